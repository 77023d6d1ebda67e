package delivery

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// implicitPeer serves SMTP inside TLS from the first byte (port 465 style).
func implicitPeer(t *testing.T, cert tls.Certificate) *peer {
	t.Helper()
	p := newPeer(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	go p.srv.Serve(ln)
	return p
}

func TestRouteTLSModes(t *testing.T) {
	goodCert, pool := testCert(t, "relay.test")
	badCert, _ := testCert(t, "someone-else.test") // not in the pool we trust
	off := false
	tests := []struct {
		name      string
		peer      func(t *testing.T) *peer
		tls       string
		verify    *bool
		delivered bool
		reply     string // in LastReply when not delivered
	}{
		{"implicit, verified", func(t *testing.T) *peer { return implicitPeer(t, goodCert) }, "implicit", nil, true, ""},
		{"implicit, unknown CA", func(t *testing.T) *peer { return implicitPeer(t, badCert) }, "implicit", nil, false, "certificate"},
		{"required, verified", func(t *testing.T) *peer { return newPeer(t, withTLS(goodCert)) }, "required", nil, true, ""},
		{"required, unknown CA", func(t *testing.T) *peer { return newPeer(t, withTLS(badCert)) }, "required", nil, false, "certificate"},
		{"required, verification off (internal hop)", func(t *testing.T) *peer { return newPeer(t, withTLS(badCert)) }, "required", &off, true, ""},
		{"opportunistic, any certificate", func(t *testing.T) *peer { return newPeer(t, withTLS(badCert)) }, "opportunistic", nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.peer(t)
			cfg := baseConfig(t)
			_, port, _ := net.SplitHostPort(p.addr)
			cfg.Routes = []config.Route{mkRoute([]string{"*"}, "relay.test:"+port, func(r *config.Route) {
				r.TLS, r.TLSVerify = tt.tls, tt.verify
			})}
			w := newWorld(t, cfg, "relay.test. 60 IN A 127.0.0.1")
			w.pool = pool
			id := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
			w.start()
			if tt.delivered {
				w.waitFor("delivery", func() bool { return len(p.messages()) == 1 && w.queueEmpty() })
				if !p.messages()[0].tls && tt.tls != "implicit" {
					t.Error("delivered without TLS")
				}
				return
			}
			w.waitFor("an attempt", func() bool { return w.get(id).Attempts >= 1 })
			r := w.get(id).Rcpts[0]
			if r.Status != queue.RcptPending || !strings.Contains(r.LastReply, tt.reply) || len(p.messages()) != 0 {
				t.Errorf("got %s %q, %d delivered; want pending with %q", r.Status, r.LastReply, len(p.messages()), tt.reply)
			}
			// The admin is told how to fix it.
			if !strings.Contains(w.logs.String(), "level=WARN msg=\"delivery: the next hop's TLS certificate does not verify") ||
				!strings.Contains(w.logs.String(), "tls_verify: false") {
				t.Errorf("no warning naming the fix:\n%s", w.logs.String())
			}
		})
	}
}

// The warning for a certificate that does not verify says what helps,
// by why it does not: a CA for an unknown issuer, not for an expired
// certificate or one naming another host.
func TestCertFix(t *testing.T) {
	for _, tt := range []struct {
		err        error
		want, fake string
	}{
		{x509.UnknownAuthorityError{}, "SSL_CERT_FILE", ""},
		{x509.CertificateInvalidError{Reason: x509.Expired}, "renew", "SSL_CERT_FILE"},
		{x509.HostnameError{Host: "relay.test"}, "next_hop", "SSL_CERT_FILE"},
	} {
		got := certFix(tt.err)
		if !strings.Contains(got, tt.want) || !strings.Contains(got, "tls_verify: false") || (tt.fake != "" && strings.Contains(got, tt.fake)) {
			t.Errorf("certFix(%T) = %q, want %q and tls_verify, not %q", tt.err, got, tt.want, tt.fake)
		}
	}
}

// A next hop whose certificate, from a trusted CA, names another host:
// deferred, and the warning points at the route's name, not at a CA.
func TestCertificateForAnotherHost(t *testing.T) {
	cert, pool := testCert(t, "other.test")
	p := newPeer(t, withTLS(cert))
	cfg := baseConfig(t)
	_, port, _ := net.SplitHostPort(p.addr)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, "relay.test:"+port, func(r *config.Route) { r.TLS = "required" })}
	w := newWorld(t, cfg, "relay.test. 60 IN A 127.0.0.1")
	w.pool = pool
	id := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("an attempt", func() bool { return w.get(id).Attempts >= 1 })
	if n := len(p.messages()); n != 0 {
		t.Fatalf("%d delivered past a certificate for another host", n)
	}
	if logs := w.logs.String(); !strings.Contains(logs, "does not name the host") || strings.Contains(logs, "SSL_CERT_FILE") {
		t.Errorf("warning does not point at the name:\n%s", logs)
	}
}

// A refusal of our own after the hop's reply (here: tls: required, no
// STARTTLS offered) leaves the conversation in step, so it ends with QUIT
// rather than a hang-up (inStep).
func TestRequiredTLSNotOfferedQuits(t *testing.T) {
	mx := newScriptPeerGreeting(t, "220 relay.test ESMTP\r\n", func(l string) string { return basicReplies(lockstepEHLO, l) })
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, mx.addr, func(r *config.Route) { r.TLS = "required" })}
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("an attempt", func() bool { return w.get(id).Attempts >= 1 })
	w.waitFor("QUIT", mx.quitLast)
	if cmds := mx.commands(); len(cmds) != 2 || !strings.HasPrefix(cmds[0], "EHLO ") {
		t.Errorf("commands %q, want EHLO then QUIT", cmds)
	}
}

// IPv6: an MX with only an AAAA record is reached over IPv6 (::1 here).
func TestMXOverIPv6(t *testing.T) {
	p := newPeer(t, func(p *peer) { p.addr = "[::1]:0" })
	cfg := baseConfig(t)
	w := newWorld(t, cfg, "six.test. 60 IN MX 10 mx.six.test.", "mx.six.test. 60 IN AAAA ::1")
	w.mapAddr("[::1]:25", p.addr) // the peer listens on [::1], another port
	w.enqueue("u@local.test", []string{"x@six.test"}, localSender, plainBody)
	w.start()
	w.waitFor("delivery", func() bool { return len(p.messages()) == 1 && w.queueEmpty() })
	if !strings.Contains(w.logs.String(), "relay=mx.six.test[[::1]:25]") {
		t.Errorf("log does not show the IPv6 hop")
	}
}

// Opportunistic TLS whose handshake fails goes again in clear (the hop
// only offered TLS 1.0 here, below our minimum); required TLS would not.
func TestOpportunisticFallsBackToClear(t *testing.T) {
	cert, _ := testCert(t, "relay.test")
	p := newPeer(t, withTLS(cert), func(p *peer) { p.srv.TLSConfig.MaxVersion = tls.VersionTLS10 })
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, p.addr, func(r *config.Route) { r.TLS = "opportunistic" })}
	w := newWorld(t, cfg)
	w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("delivery in clear", func() bool { return len(p.messages()) == 1 && w.queueEmpty() })
	if p.messages()[0].tls || !strings.Contains(w.logs.String(), "STARTTLS failed, trying again without TLS") {
		t.Error("no fallback to clear text seen")
	}
}

// A route with tls: required never sends a message in clear: a next hop
// that does not offer STARTTLS gets nothing, and the recipient waits with
// our own 4.7.10 saying why. Without AUTH on the route, so that the refusal
// to send credentials in clear (also 4.7.10) cannot stand in for it.
func TestRequiredTLSNotOffered(t *testing.T) {
	p := newPeer(t) // no STARTTLS
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, p.addr, func(r *config.Route) { r.TLS = "required" })}
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.start()
	// The peer holds a message before it answers 250 (and the queue drops
	// it), so a delivery is seen before the envelope can be gone.
	w.waitFor("an attempt", func() bool { return len(p.messages()) > 0 || w.get(id).Attempts >= 1 })
	if n := len(p.messages()); n != 0 {
		t.Fatalf("%d messages delivered in clear over a tls: required route", n)
	}
	r := w.get(id).Rcpts[0]
	if r.Status != queue.RcptPending || !strings.Contains(r.LastReply, "4.7.10") ||
		!strings.Contains(r.LastReply, "TLS required by route but not offered") {
		t.Errorf("recipient %s %q, want pending with 4.7.10 TLS required but not offered", r.Status, r.LastReply)
	}
}

// A next hop that answers STARTTLS with a refusal (454 4.7.0, TLS not
// available now) is still in step: the TLS error it is wrapped in is no
// failed handshake, and the session ends with QUIT (inStep), as it did
// before the local refusals were sorted out.
func TestStartTLSRefusedQuits(t *testing.T) {
	mx := newScriptPeerGreeting(t, "220 relay.test ESMTP\r\n", func(l string) string {
		switch l {
		case "STARTTLS":
			return "454 4.7.0 TLS not available due to temporary reason\r\n"
		}
		return basicReplies("250-script.test\r\n250-STARTTLS\r\n250 ENHANCEDSTATUSCODES\r\n", l)
	})
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, mx.addr, func(r *config.Route) { r.TLS = "required" })}
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("an attempt", func() bool { return w.get(id).Attempts >= 1 })
	w.waitFor("QUIT", mx.quitLast)
	if cmds := mx.commands(); len(cmds) != 3 || cmds[1] != "STARTTLS" {
		t.Errorf("commands %q, want EHLO, STARTTLS, QUIT", cmds)
	}
}
