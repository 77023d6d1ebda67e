package delivery

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/verify"
)

// mailboxes is a server behind the gateway: it knows bob and carol, is
// busy for busy, hangs on hang until release closes, and knows nobody else.
func mailboxes(release chan struct{}) func(string) error {
	return func(to string) error {
		switch strings.ToLower(to) {
		case "bob@local.test", "carol@local.test":
			return nil
		case "busy@local.test":
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "mailbox store busy"}
		case "hang@local.test":
			<-release
			return nil
		}
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: no such user here"}
	}
}

func verifyWorld(t *testing.T, hop string, edit ...func(*config.Route)) *world {
	t.Helper()
	cfg := baseConfig(t)
	cfg.Relay.Domains = []string{"local.test"}
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, hop, append([]func(*config.Route){func(r *config.Route) {
		r.VerifyRecipients = true
	}}, edit...)...)}
	w := newWorld(t, cfg)
	w.start()
	return w
}

func TestProbe(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	p := newPeer(t)
	p.setRcpt(mailboxes(release))
	w := verifyWorld(t, p.addr)
	cases := []struct {
		rcpt, want string
	}{
		{"bob@local.test", "250 2.0.0 "},
		{"eve@local.test", "550 5.1.1 <eve@local.test>: no such user here"},
		{"busy@local.test", "451 4.3.0 mailbox store busy"},
	}
	for _, c := range cases {
		a := w.m.Probe(context.Background(), c.rcpt)
		if a.Err != nil || a.Mail != nil || a.Rcpt == nil || !strings.HasPrefix(a.Rcpt.String(), c.want) {
			t.Errorf("%s: %+v (reply %v), want %q", c.rcpt, a, a.Rcpt, c.want)
		}
		if want := "127.0.0.1[127.0.0.1]:"; !strings.HasPrefix(a.Host, want) {
			t.Errorf("%s: host %q", c.rcpt, a.Host)
		}
	}
	if n := len(p.messages()); n != 0 {
		t.Errorf("%d messages reached the server behind; a probe never sends DATA", n)
	}

	// A server that hangs: the probe ends with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	a := w.m.Probe(ctx, "hang@local.test")
	if a.Rcpt != nil || a.Err == nil || !strings.Contains(a.Err.Error(), "probe timed out") {
		t.Errorf("hanging server: %+v", a)
	}
}

func TestProbeConnectionRefused(t *testing.T) {
	w := verifyWorld(t, closedPort(t))
	a := w.m.Probe(context.Background(), "bob@local.test")
	if a.Rcpt != nil || a.Err == nil || !strings.Contains(a.Err.Error(), "connection refused") {
		t.Errorf("%+v", a)
	}
}

// TestProbeTranscript: what the server behind sees of a probe. EHLO with
// our name, MAIL FROM:<> (nothing can bounce to anyone), the RCPT, RSET
// and QUIT: never DATA.
func TestProbeTranscript(t *testing.T) {
	p := newScriptPeer(t, func(line string) string {
		switch {
		case strings.HasPrefix(line, "EHLO"):
			return "250-script.test\r\n250 PIPELINING\r\n"
		case strings.HasPrefix(line, "RCPT"):
			return "550 5.1.1 unknown\r\n"
		case strings.HasPrefix(line, "QUIT"):
			return "221 bye\r\n"
		}
		return "250 ok\r\n"
	})
	w := verifyWorld(t, p.addr)
	a := w.m.Probe(context.Background(), "john smith@local.test") // as go-smtp hands it
	if a.Rcpt == nil || a.Rcpt.Code != 550 {
		t.Fatalf("%+v", a)
	}
	w.waitFor("QUIT", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.cmds) > 0 && p.cmds[len(p.cmds)-1] == "QUIT"
	})
	p.mu.Lock()
	got := strings.Join(p.cmds, "\n")
	p.mu.Unlock()
	want := "EHLO gw.test\nMAIL FROM:<>\nRCPT TO:<\"john smith\"@local.test>\nRSET\nQUIT"
	if got != want {
		t.Errorf("transcript:\n%s\nwant:\n%s", got, want)
	}
}

// TestProbeMailRefused: a server that refuses the null sender has said
// nothing about the recipient.
func TestProbeMailRefused(t *testing.T) {
	p := newScriptPeer(t, func(line string) string {
		switch {
		case strings.HasPrefix(line, "MAIL"):
			return "550 5.7.1 no bounces here\r\n"
		case strings.HasPrefix(line, "QUIT"):
			return "221 bye\r\n"
		}
		return "250 ok\r\n"
	})
	w := verifyWorld(t, p.addr)
	a := w.m.Probe(context.Background(), "bob@local.test")
	if a.Mail == nil || a.Mail.Code != 550 || a.Rcpt != nil {
		t.Errorf("%+v", a)
	}
}

// TestProbeTLS: a probe keeps the route's TLS policy: tls: required with
// verification against a server whose certificate we trust.
func TestProbeTLS(t *testing.T) {
	cert, pool := testCert(t, "relay.test")
	p := newPeer(t, withTLS(cert))
	p.setRcpt(func(string) error { return nil })
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, "relay.test:25", func(r *config.Route) {
		r.TLS, r.VerifyRecipients = "required", true
	})}
	w := newWorld(t, cfg, "relay.test. 300 IN A 127.0.0.9")
	w.mapAddr("127.0.0.9:25", p.addr)
	w.pool = pool
	w.start()
	a := w.m.Probe(context.Background(), "bob@local.test")
	if a.Rcpt == nil || a.Rcpt.Code != 250 {
		t.Fatalf("%+v", a)
	}
	// A certificate that does not verify is no answer.
	w2cert, _ := testCert(t, "someone-else.test")
	p2 := newPeer(t, withTLS(w2cert))
	w.mapAddr("127.0.0.9:25", p2.addr)
	a = w.m.Probe(context.Background(), "bob@local.test")
	if a.Rcpt != nil || a.Err == nil || !strings.Contains(a.Err.Error(), "certificate") {
		t.Errorf("unverified certificate: %+v", a)
	}
}

func TestVerifyTarget(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Relay.Domains = []string{"local.test", "plain.test", ".sub.test"}
	cfg.Routes = []config.Route{
		mkRoute([]string{"local.test", "*.sub.test"}, "10.0.0.5:25", func(r *config.Route) { r.VerifyRecipients, r.VerifyTempfail, r.Concurrency = true, "accept", 7 }),
		mkRoute([]string{"plain.test"}, "10.0.0.6:25"),
		mkRoute([]string{"*"}, "MBOX.example:25", func(r *config.Route) { r.VerifyRecipients = true }),
	}
	w := newWorld(t, cfg)
	m := w.start()
	cases := []struct {
		rcpt string
		want verify.Target
		ok   bool
	}{
		{"bob@local.test", verify.Target{Hop: "10.0.0.5:25", Route: 0, Limit: 7, TempAccept: true}, true},
		{"bob@LOCAL.test", verify.Target{Hop: "10.0.0.5:25", Route: 0, Limit: 7, TempAccept: true}, true},
		{"bob@a.sub.test", verify.Target{Hop: "10.0.0.5:25", Route: 0, Limit: 7, TempAccept: true}, true},
		{"bob@plain.test", verify.Target{}, false},   // its route does not verify
		{"bob@outside.test", verify.Target{}, false}, // not in relay.domains
		{"bøb@local.test", verify.Target{}, false},   // not ASCII
	}
	for _, c := range cases {
		got, ok := m.VerifyTarget(c.rcpt)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: %+v %v, want %+v %v", c.rcpt, got, ok, c.want, c.ok)
		}
	}
	// A relay domain that only the "*" route carries.
	cfg2 := baseConfig(t)
	cfg2.Relay.Domains = []string{"other.test"}
	cfg2.Routes = cfg.Routes
	if err := m.Reload(cfg2); err != nil {
		t.Fatal(err)
	}
	if got, ok := m.VerifyTarget("x@other.test"); !ok || got.Hop != "mbox.example:25" || got.Route != 2 || got.Limit != 20 {
		t.Errorf("after reload: %+v %v", got, ok)
	}
}
