package smtpd

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"strings"
	"testing"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/sdk"
)

func proxyHeader(t *testing.T, version byte, src string) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(version,
		&net.TCPAddr{IP: net.ParseIP(src), Port: 40000}, &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 25})
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProxyProtocol(t *testing.T) {
	cfg := testConfig(t)
	cfg.Listeners[0].ProxyProtocol = true
	cfg.Listeners[0].TrustedProxies = []config.Prefixes{{Prefix: netip.MustParsePrefix("127.0.0.7/32")}}
	ts := startServer(t, cfg, nil)
	for _, v := range []byte{1, 2} {
		t.Run("v"+string(rune('0'+v)), func(t *testing.T) {
			r := newRaw(t, ts.addr(), 7)
			r.send(string(proxyHeader(t, v, "203.0.113.9")))
			r.hello()
			r.cmd("MAIL FROM:<a@example.org>", "250")
			// The real client is outside: no relay for it, though the
			// proxy itself (127.0.0.7) is loopback.
			r.cmd("RCPT TO:<x@elsewhere.example>", "554 5.7.1")
			r.cmd("RCPT TO:<bob@example.test>", "250")
			r.cmd("DATA", "354")
			r.send(message("proxied") + ".\r\n")
			id := strings.Fields(r.expect("250 2.0.0"))[2]
			checkReceivedProto(t, ts, id, "[203.0.113.9]")
		})
	}
	t.Run("untrusted proxy", func(t *testing.T) {
		r := newRaw(t, ts.addr(), 8)
		r.send(string(proxyHeader(t, 1, "203.0.113.9")))
		if !r.closed() {
			t.Fatal("header from an untrusted address accepted")
		}
	})
	t.Run("garbage header", func(t *testing.T) {
		r := newRaw(t, ts.addr(), 7)
		r.send("PROXY TCP4 nonsense\r\n")
		if !r.closed() {
			t.Fatal("bad header accepted")
		}
	})
}

func TestHeloPhase(t *testing.T) {
	run := &ruleRunner{rules: map[sdk.Phase]func(*sdk.Request) *pipeline.Decision{
		sdk.PhaseHelo: func(r *sdk.Request) *pipeline.Decision {
			if r.Conn.HELO == "mx.example.test" {
				return &pipeline.Decision{Action: pipeline.Reject, Reply: &pipeline.Reply{Code: 550, Enhanced: "5.7.1", Text: "You are not me"}}
			}
			return cont()
		},
	}}
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Pipeline = run })
	r := newRaw(t, ts.addr(), 2)
	r.expect("220")
	r.cmd("EHLO mx.example.test", "550 5.7.1 You are not me")
	r.cmd("MAIL FROM:<a@example.org>", "503 5.5.1")
	r.cmd("EHLO honest.example.org", "250")
	// A later EHLO or HELO is judged too: go-smtp calls NewSession only once.
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("EHLO mx.example.test", "550 5.7.1 You are not me")
	r.cmd("MAIL FROM:<a@example.org>", "503 5.5.1 Send EHLO first")
	r.cmd("RCPT TO:<bob@example.test>", "503 5.5.1 Send EHLO first")
	r.cmd("HELO mx.example.test", "550 5.7.1 You are not me")
	r.cmd("HELO honest.example.org", "250")
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<bob@example.test>", "250")
	r.cmd("DATA", "354")
	r.send(message("helo") + ".\r\n")
	id := strings.Fields(r.expect("250 2.0.0"))[2]
	checkReceivedProto(t, ts, id, "Received: from honest.example.org ")
}

// TestReloadCertificate: a reload picks up a new certificate for new sessions.
func TestReloadCertificate(t *testing.T) {
	cfg, pool1 := starttlsConfig(t)
	ts := startServer(t, cfg, nil)
	handshake := func(pool *x509.CertPool) error {
		r := newRaw(t, ts.addr(), 2)
		r.hello()
		r.cmd("STARTTLS", "220")
		tc := tls.Client(r.c, &tls.Config{ServerName: "mx.example.test", RootCAs: pool, MinVersion: tls.VersionTLS12})
		return tc.Handshake()
	}
	if err := handshake(pool1); err != nil {
		t.Fatal(err)
	}
	next := *cfg
	var pool2 *x509.CertPool
	next.TLS.Cert, next.TLS.Key, pool2 = writeCert(t, t.TempDir())
	d := ts.deps
	d.Config = &next
	if err := ts.Reload(d); err != nil {
		t.Fatal(err)
	}
	if err := handshake(pool2); err != nil {
		t.Fatalf("new certificate not served: %v", err)
	}
	if err := handshake(pool1); err == nil {
		t.Fatal("old certificate still served")
	}
}
