package delivery

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// The OB25 office: a smarthost on 587 with AUTH after STARTTLS, and the
// internal server for relay.domains. These tests are the admin's view of
// that set-up: what a bad password, a size limit, a subdomain or a reload
// does to the mail.

// ob25World routes local.test home, everything else through isp (AUTH
// with mech, STARTTLS required) reached as smarthost.test:587.
func ob25World(t *testing.T, mech string, edit ...func(*peer)) (w *world, isp, home *peer) {
	t.Helper()
	cert, pool := testCert(t, "smarthost.test")
	opts := []peerOpt{withTLS(cert), withAuth(mech)}
	for _, e := range edit {
		opts = append(opts, peerOpt(e))
	}
	isp, home = newPeer(t, opts...), newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)} // one attempt per message
	pw := passwordFile(t, cfg, isp.pass)
	cfg.Routes = []config.Route{
		mkRoute([]string{"*"}, "smarthost.test:587", func(r *config.Route) {
			r.TLS, r.SkipLocal = "required", true
			r.Auth = &config.RouteAuth{Username: isp.user, PasswordFile: pw}
		}),
		mkRoute([]string{"local.test"}, home.addr),
	}
	w = newWorld(t, cfg, "smarthost.test. 60 IN A 127.0.0.5")
	w.pool = pool
	w.mapAddr("127.0.0.5:587", isp.addr)
	return w, isp, home
}

// Postfix's smtp_sasl_auth_soft_bounce (yes by default): a 535 from the
// smarthost is our configuration's fault, not the recipients'; the mail
// waits, nothing bounces, and the admin reads one clear warning per failed
// login (RFC 4954 6: 535 5.7.8) that names the user and never the password.
func TestOB25BadPasswordDefersAndWarnsOnce(t *testing.T) {
	w, isp, home := ob25World(t, "PLAIN")
	if err := os.WriteFile(filepath.Join(w.cfg.Dir, "isp.pass"), []byte("wrong horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := w.enqueue("u@local.test", []string{"x@far.test", "y@other.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the first attempt", func() bool { return w.get(id).Attempts == 1 })
	for _, r := range w.get(id).Rcpts {
		if r.Status != queue.RcptPending || !strings.HasPrefix(r.LastReply, "451 4.7.8 ") ||
			!strings.Contains(r.LastReply, "SASL authentication failed") || !strings.Contains(r.LastReply, "535") {
			t.Errorf("%s: %s %q, want pending with 451 4.7.8 SASL authentication failed ... 535", r.Addr, r.Status, r.LastReply)
		}
	}
	if n := len(home.messages()); n != 0 {
		t.Errorf("%d DSNs for a bad smarthost password", n)
	}
	if n := isp.authTry.Load(); n != 1 {
		t.Errorf("%d AUTH attempts, want 1", n)
	}
	logs := w.logs.String()
	var warns []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "SMTP AUTH") {
			warns = append(warns, l)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "user="+isp.user) || !strings.Contains(warns[0], "535") {
		t.Errorf("want one AUTH warning naming the user and the reply, got %q", warns)
	}
	if strings.Contains(logs, "wrong horse") || strings.Contains(logs, isp.pass) {
		t.Error("a password is in the log")
	}
	// The delivery lines say where it failed and that TLS was up: the
	// login went over TLS, and must not read as a password sent in clear.
	lines := 0
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, "msg=delivery ") {
			continue
		}
		lines++
		if !strings.Contains(l, "relay=smarthost.test[127.0.0.5:587]") || !strings.Contains(l, "tls=true") {
			t.Errorf("delivery line without the hop or its TLS: %s", l)
		}
	}
	if lines != 2 {
		t.Errorf("%d delivery lines, want one per recipient", lines)
	}
}

// The admin fixes the password file and reloads: the next message goes out
// at once. The smarthost's earlier refusal must not be remembered past the
// reload (the destination had been marked dead with the 535), or the
// "queue flush" after the fix does nothing and reports the old 535 again.
func TestOB25ReloadAfterPasswordFix(t *testing.T) {
	w, isp, _ := ob25World(t, "PLAIN")
	passPath := filepath.Join(w.cfg.Dir, "isp.pass")
	if err := os.WriteFile(passPath, []byte("wrong horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The dead-destination mark lasts the first retry interval (capped at
	// a minute): longer than this test waits.
	w.cfg.Queue.Retry = []config.Duration{config.Duration(10 * time.Minute)}
	first := w.enqueue("u@local.test", []string{"x@far.test"}, localSender, plainBody)
	m := w.start()
	w.waitFor("the refused attempt", func() bool { return w.get(first).Attempts == 1 })
	if err := os.WriteFile(passPath, []byte(isp.pass+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg2 := *w.cfg
	if err := m.Reload(&cfg2); err != nil {
		t.Fatal(err)
	}
	w.enqueue("u@local.test", []string{"y@far.test"}, localSender, plainBody)
	w.waitFor("the new message delivered with the new password", func() bool {
		return slices.ContainsFunc(isp.messages(), func(r received) bool { return r.rcpts[0] == "y@far.test" })
	})
	if isp.authOK.Load() != 1 {
		t.Errorf("%d successful logins, want 1", isp.authOK.Load())
	}
}

// relay.domains ".local.test" covers the subdomains of local.test (as the
// policy reads it, README relay.domains): skip_local must keep them off
// the smarthost too, or mail for an internal subdomain leaves the office.
func TestSkipLocalCoversSubdomainEntries(t *testing.T) {
	isp, inside := newPeer(t), newPeer(t)
	cfg := baseConfig(t)
	cfg.Relay.Domains = []string{"local.test", ".corp.test", "*.lan.test"}
	cfg.Routes = []config.Route{
		mkRoute([]string{"*"}, isp.addr, func(r *config.Route) { r.SkipLocal = true }),
		mkRoute([]string{"*.corp.test", "*.lan.test"}, inside.addr),
	}
	w := newWorld(t, cfg)
	w.enqueue("u@local.test", []string{"a@hq.corp.test", "b@x.lan.test", "c@far.test"}, localSender, plainBody)
	w.start()
	w.waitFor("delivery", func() bool { return w.queueEmpty() })
	var in, out []string
	for _, m := range inside.messages() {
		in = append(in, m.rcpts...)
	}
	for _, m := range isp.messages() {
		out = append(out, m.rcpts...)
	}
	slices.Sort(in)
	if !slices.Equal(in, []string{"a@hq.corp.test", "b@x.lan.test"}) || !slices.Equal(out, []string{"c@far.test"}) {
		t.Errorf("inside got %q, smarthost got %q; want the subdomains inside and only c@far.test out", in, out)
	}
}

// RFC 1870: the size of the message goes with MAIL FROM when the next hop
// offers SIZE, so that it can refuse an oversized message before the bytes
// cross a slow office uplink.
func TestSizeDeclared(t *testing.T) {
	down := newPeer(t, func(p *peer) { p.srv.MaxMessageBytes = 1 << 20 })
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("delivery", func() bool { return len(down.messages()) == 1 && w.queueEmpty() })
	if got := down.messages()[0].mailOpts.Size; got != int64(len(plainBody)) {
		t.Errorf("MAIL FROM declared SIZE=%d, want %d", got, len(plainBody))
	}
}

// RFC 1870 6.1 and Postfix ("message size N exceeds size limit M of
// server"): a message larger than the limit the next hop announces fails
// for good with 5.3.4 before MAIL, as retrying cannot make it fit; the
// connection stays usable for the next message.
func TestSizeOverPeerLimitFailsUpFront(t *testing.T) {
	ehlo := "250-script.test\r\n250-PIPELINING\r\n250-SIZE 100\r\n250 ENHANCEDSTATUSCODES\r\n"
	down := newScriptPeer(t, func(line string) string { return basicReplies(ehlo, line) })
	home := newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.Workers = 1
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	big := plainBody + strings.Repeat("0123456789abcdef\r\n", 8)
	w.enqueue("u@local.test", []string{"x@d.test"}, localSender, big)
	w.start()
	w.waitFor("the DSN", func() bool { return len(home.messages()) == 1 && w.queueEmpty() })
	for _, c := range down.commands() {
		if strings.HasPrefix(c, "MAIL") || c == "DATA" {
			t.Errorf("sent %q for a message over the next hop's SIZE", c)
		}
	}
	d := parseDSN(t, home.messages()[0])
	d.want(t, "Action: failed", "Status: 5.3.4", "exceeds size limit 100")
	// A small one goes on the same connection.
	w.enqueue("u@local.test", []string{"y@d.test"}, localSender, plainBody)
	w.waitFor("the small message", func() bool { return len(down.messages()) == 1 && w.queueEmpty() })
	if n := strings.Count(strings.Join(down.commands(), "\n"), "EHLO"); n != 1 {
		t.Errorf("%d sessions, want the first one reused", n)
	}
}

// RFC 5321 4.5.3.1.10: a 552 to RCPT is the RFC 821 "too many recipients"
// and clients SHOULD treat it as temporary (452): those recipients wait for
// the next attempt, they do not bounce.
func TestRcpt552IsTemporary(t *testing.T) {
	down := newPeer(t)
	n := 0
	down.setRcpt(func(string) error {
		if n++; n > 2 {
			return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 5, 3}, Message: "too many recipients"}
		}
		return nil
	})
	home := newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)}
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"a@d.test", "b@d.test", "c@d.test", "d@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the first attempt", func() bool { e, err := w.q.Get(id); return err != nil || e.Attempts == 1 })
	env, err := w.q.Get(id)
	if err != nil {
		t.Fatalf("the message is gone after one attempt (%v): recipients over the limit bounced", err)
	}
	for _, r := range env.Rcpts {
		want := queue.RcptDelivered
		if r.Addr == "c@d.test" || r.Addr == "d@d.test" {
			want = queue.RcptPending
			if !strings.HasPrefix(r.LastReply, "452 4.5.3 ") {
				t.Errorf("%s: reply %q, want it as 452 4.5.3", r.Addr, r.LastReply)
			}
		}
		if r.Status != want {
			t.Errorf("%s: %s, want %s (%s)", r.Addr, r.Status, want, r.LastReply)
		}
	}
	if n := len(home.messages()); n != 0 {
		t.Errorf("%d DSNs for recipients over the next hop's limit", n)
	}
}

// RFC 5321 3.8: a 421 says the server is closing the channel; a
// connection that got one (here to MAIL, from a smarthost going down for
// maintenance that lingers before the close) is not pooled for the next
// message: that one opens a new session.
func TestNoReuseAfter421(t *testing.T) {
	var mails atomic.Int32
	down := newScriptPeer(t, func(line string) string {
		if strings.HasPrefix(line, "MAIL") && mails.Add(1) == 1 {
			return "421 4.3.2 shutting down\r\n"
		}
		return basicReplies(lockstepEHLO, line)
	})
	cfg := baseConfig(t)
	cfg.Queue.Workers = 1
	cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)}
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	first := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the 421", func() bool { return w.get(first).Attempts == 1 })
	if r := w.get(first).Rcpts[0]; r.Status != queue.RcptPending || !strings.HasPrefix(r.LastReply, "421 4.3.2") {
		t.Errorf("after 421: %s %q, want pending", r.Status, r.LastReply)
	}
	w.enqueue("u@local.test", []string{"y@d.test"}, localSender, plainBody)
	w.waitFor("the second message", func() bool { return len(down.messages()) == 1 })
	if n := strings.Count(strings.Join(down.commands(), "\n"), "EHLO"); n != 2 {
		t.Errorf("%d sessions, want 2: the one that said 421 was used again", n)
	}
}

// A smarthost password file other users can read is warned about at start
// and at every reload (it still works: it may be shared on purpose).
func TestOB25OpenPasswordFileWarned(t *testing.T) {
	w, isp, _ := ob25World(t, "PLAIN")
	path := filepath.Join(w.cfg.Dir, "isp.pass")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	w.enqueue("u@local.test", []string{"x@far.test"}, localSender, plainBody)
	w.start()
	w.waitFor("delivery", func() bool { return len(isp.messages()) == 1 })
	if !strings.Contains(w.logs.String(), "password file is readable by every user") || !strings.Contains(w.logs.String(), "mode=0644") {
		t.Errorf("no warning for a 0644 password file:\n%s", w.logs.String())
	}
	if strings.Contains(w.logs.String(), isp.pass) {
		t.Error("the password is in the log")
	}
}

// A 552 to RCPT that says something other than "too many recipients"
// (Gmail's "552 5.2.2 ... over quota and inactive", a 5.1.1) is the
// hop's verdict on that recipient: it bounces at once, named alone in the
// DSN, instead of being retried as a 452 until queue.max_age. A 552 with no
// enhanced code may be RFC 821's "too many recipients" and waits.
func TestRcpt552OtherThanTooManyBounces(t *testing.T) {
	down := newScriptPeer(t, func(line string) string {
		switch {
		case strings.Contains(line, "<full@d.test>"):
			return "552 5.2.2 mailbox full\r\n"
		case strings.Contains(line, "<bare@d.test>"):
			return "552 too many recipients\r\n"
		}
		return basicReplies(pipeliningEHLO, line)
	})
	home := newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)}
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"ok@d.test", "full@d.test", "bare@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the first attempt and its DSN", func() bool { return w.get(id).Attempts == 1 && len(home.messages()) == 1 })
	want := map[string]queue.RcptStatus{"ok@d.test": queue.RcptDelivered, "full@d.test": queue.RcptFailed, "bare@d.test": queue.RcptPending}
	for _, r := range w.get(id).Rcpts {
		if r.Status != want[r.Addr] {
			t.Errorf("%s: %s, want %s (%s)", r.Addr, r.Status, want[r.Addr], r.LastReply)
		}
	}
	d := parseDSN(t, home.messages()[0])
	d.want(t, "Final-Recipient: rfc822; full@d.test", "Status: 5.2.2", "Diagnostic-Code: smtp; 552 5.2.2 mailbox full")
	d.wantNot(t, "ok@d.test", "bare@d.test")
}

// A smarthost that answers AUTH with a temporary failure of its own (RFC
// 4954 6: 454 4.7.0, its password store down; Exim says "435 Unable to
// authenticate at present" when its authenticator defers) defers the mail
// as a 535 does, but the warning does not send the admin to fix a password
// that is right. A 432 (a password transition needed) is ours to fix.
func TestOB25TemporaryAuthFailureNotBlamedOnPassword(t *testing.T) {
	for _, tt := range []struct {
		reply  string
		theirs bool
	}{
		{"454 4.7.0 Temporary authentication failure", true},
		{"435 Unable to authenticate at present", true},
		{"432 4.7.12 A password transition is needed", false},
	} {
		t.Run(tt.reply[:3], func(t *testing.T) {
			isp := newScriptPeer(t, func(line string) string {
				if strings.HasPrefix(line, "AUTH ") {
					return tt.reply + "\r\n"
				}
				return basicReplies("250-isp.test\r\n250 AUTH PLAIN\r\n", line)
			})
			cfg := baseConfig(t)
			cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)}
			pw := passwordFile(t, cfg, "right")
			cfg.Routes = []config.Route{mkRoute([]string{"*"}, isp.addr, func(r *config.Route) {
				r.Auth = &config.RouteAuth{Username: "u", PasswordFile: pw, AllowPlaintext: true}
			})}
			w := newWorld(t, cfg)
			id := w.enqueue("u@local.test", []string{"x@far.test"}, localSender, plainBody)
			w.start()
			w.waitFor("the first attempt", func() bool { return w.get(id).Attempts == 1 })
			if r := w.get(id).Rcpts[0]; r.Status != queue.RcptPending || !strings.Contains(r.LastReply, tt.reply) {
				t.Errorf("%s %q, want pending with the hop's %q", r.Status, r.LastReply, tt.reply)
			}
			logs := w.logs.String()
			if got := logLine(logs, "level=WARN", "queue_id="+id, "temporary reason of its own", "user=u"); got != tt.theirs {
				t.Errorf("a warning says the failure is the hop's own: %v, want %v", got, tt.theirs)
			}
			if got := strings.Contains(logs, "password_file is fixed"); got == tt.theirs {
				t.Errorf("the warning blames our password: %v, want %v", got, !tt.theirs)
			}
		})
	}
}
