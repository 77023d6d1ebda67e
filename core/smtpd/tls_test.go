package smtpd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
)

// startTLSClient says STARTTLS and completes the handshake.
func startTLSClient(t *testing.T, r *rawClient, pool *x509.CertPool) *rawClient {
	t.Helper()
	r.cmd("STARTTLS", "220 2.0.0")
	tc := tls.Client(r.c, &tls.Config{ServerName: "mx.example.test", RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return &rawClient{t: t, c: tc, br: newReader(tc)}
}

// TestSTARTTLSEdges: RFC 3207 4 and 4.2 around the STARTTLS command.
func TestSTARTTLSEdges(t *testing.T) {
	cfg, pool := starttlsConfig(t)
	ts := startServer(t, cfg, nil)
	t.Run("parameter", func(t *testing.T) {
		r := newRaw(t, ts.addr(), 2)
		r.hello()
		r.cmd("STARTTLS now", "501 5.5.4")
		startTLSClient(t, r, pool).cmd("EHLO c.example.org", "250")
	})
	t.Run("twice", func(t *testing.T) {
		r := newRaw(t, ts.addr(), 2)
		r.hello()
		tr := startTLSClient(t, r, pool)
		tr.cmd("EHLO c.example.org", "250")
		tr.cmd("STARTTLS", "503 5.5.1 TLS already active")
		tr.cmd("NOOP", "250")
	})
	t.Run("partial line pipelined", func(t *testing.T) {
		r := newRaw(t, ts.addr(), 2)
		r.hello()
		r.send("STARTTLS\r\nRSET\r\nMAIL FROM:<inj")
		r.expect("220 2.0.0")
		tc := tls.Client(r.c, &tls.Config{ServerName: "mx.example.test", RootCAs: pool, MinVersion: tls.VersionTLS12})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		tr := &rawClient{t: t, c: tc, br: newReader(tc)}
		tr.cmd("NOOP", "250 2.0.0 I have successfully done nothing")
		tr.cmd("EHLO c.example.org", "250")
		tr.cmd("QUIT", "221")
	})
	t.Run("transaction forgotten", func(t *testing.T) {
		r := newRaw(t, ts.addr(), 2)
		r.hello()
		r.cmd("MAIL FROM:<a@example.org>", "250")
		tr := startTLSClient(t, r, pool)
		tr.cmd("EHLO c.example.org", "250")
		tr.cmd("RCPT TO:<bob@example.test>", "503 5.5.1")
		tr.cmd("MAIL FROM:<a@example.org>", "250")
	})
	t.Run("not offered without starttls", func(t *testing.T) {
		plain := startServer(t, testConfig(t), nil)
		r := newRaw(t, plain.addr(), 2)
		r.hello()
		r.cmd("STARTTLS", "502 5.5.1")
		r.cmd("NOOP", "250")
	})
}

// TestSTARTTLSOnImplicit: under implicit TLS there is nothing to start.
func TestSTARTTLSOnImplicit(t *testing.T) {
	cfg, pool := starttlsConfig(t)
	cfg.Listeners[0].TLS = "implicit"
	ts := startServer(t, cfg, nil)
	c := dialFrom(t, ts.addr(), 2)
	tc := tls.Client(c, &tls.Config{ServerName: "mx.example.test", RootCAs: pool, MinVersion: tls.VersionTLS12})
	r := &rawClient{t: t, c: tc, br: newReader(tc)}
	r.expect("220 mx.example.test ESMTP")
	if ehlo := r.cmd("EHLO c.example.org", "250"); strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("STARTTLS offered under implicit TLS:\n%s", ehlo)
	}
	r.cmd("STARTTLS", "503 5.5.1 TLS already active")
	checkReceivedProto(t, ts, r.sendMessage("implicit"), "with ESMTPS id")
}

// TestTLSMinVersion: nothing older than TLS 1.2, on either kind of listener.
func TestTLSMinVersion(t *testing.T) {
	for _, mode := range []string{"starttls", "implicit"} {
		t.Run(mode, func(t *testing.T) {
			cfg, pool := starttlsConfig(t)
			cfg.Listeners[0].TLS = mode
			ts := startServer(t, cfg, nil)
			r := newRaw(t, ts.addr(), 2)
			if mode == "starttls" {
				r.hello()
				r.cmd("STARTTLS", "220")
			}
			tc := tls.Client(r.c, &tls.Config{ServerName: "mx.example.test", RootCAs: pool,
				MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
			if err := tc.Handshake(); err == nil {
				t.Fatalf("TLS %s accepted", tls.VersionName(tc.ConnectionState().Version))
			}
		})
	}
}

// TestTLSHandshakeStall: a client that stops in the middle of the TLS
// handshake is dropped at the command timeout and frees its slot.
func TestTLSHandshakeStall(t *testing.T) {
	for _, mode := range []string{"starttls", "implicit"} {
		t.Run(mode, func(t *testing.T) {
			cfg, _ := starttlsConfig(t)
			cfg.Listeners[0].TLS = mode
			cfg.Limits.CommandTimeout = config.Duration(200 * time.Millisecond)
			ts := startServer(t, cfg, nil)
			r := newRaw(t, ts.addr(), 2)
			if mode == "starttls" {
				r.hello()
				r.cmd("STARTTLS", "220")
			}
			r.send("\x16\x03\x01") // the start of a ClientHello, then nothing
			if !r.hungUp() {
				t.Fatal("stalled handshake left open")
			}
			waitFor(t, func() bool { return ts.connCount() == 0 })
		})
	}
}

// hungUp reports whether the server closed the connection: EOF or a
// reset, not merely nothing to read (closed() takes a client-side
// timeout for a close too).
func (r *rawClient) hungUp() bool {
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, err := r.br.ReadByte()
		if err == nil {
			continue // a reply, or TLS bytes, before the close
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// TestTLSIsNotAuthentication: STARTTLS encrypts, it does not say who the
// client is. An outside client (127.0.0.2, not in relay.networks) that
// has only started TLS may send to our domains but must not relay: were
// TLS taken for authentication, the gateway would be an open relay to
// anyone who says STARTTLS.
func TestTLSIsNotAuthentication(t *testing.T) {
	cfg, pool := starttlsConfig(t)
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	tr := startTLSClient(t, r, pool)
	tr.cmd("EHLO c.example.org", "250")
	tr.cmd("MAIL FROM:<a@example.org>", "250")
	tr.cmd("RCPT TO:<carol@elsewhere.example>", "554 5.7.1 <carol@elsewhere.example>: Relay access denied")
	tr.cmd("RCPT TO:<bob@example.test>", "250")
	tr.cmd("DATA", "354")
	tr.send(message("tls only") + ".\r\n")
	id := strings.Fields(tr.expect("250 2.0.0"))[2]
	env, err := ts.q.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Rcpts) != 1 || env.Rcpts[0].Addr != "bob@example.test" || env.Client.Authenticated || !env.Client.TLS {
		t.Errorf("queued %+v from %+v, want bob@example.test only, over TLS, not authenticated", env.Rcpts, env.Client)
	}
}
