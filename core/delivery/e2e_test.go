package delivery

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// The front door: mail for relay.domains goes to the internal server, all
// its recipients in one transaction, the body unchanged except that bare
// CR and LF become CRLF.
func TestFrontDoorToDownstream(t *testing.T) {
	down := newPeer(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"example.test"}, down.addr)}
	w := newWorld(t, cfg)
	body := "Subject: x\r\n\r\nline one\rbare CR\nbare LF\r\n.dot\r\n"
	id := w.enqueue("sender@outside.test", []string{"a@example.test", "b@example.test"}, outsideSender, body)
	w.start()
	w.waitFor("delivery", func() bool { return len(down.messages()) == 1 && w.queueEmpty() })
	got := down.messages()[0]
	if strings.Join(got.rcpts, ",") != "a@example.test,b@example.test" || got.from != "sender@outside.test" {
		t.Errorf("envelope: from %q rcpts %v", got.from, got.rcpts)
	}
	if want := "Subject: x\r\n\r\nline one\r\nbare CR\r\nbare LF\r\n.dot\r\n"; got.data != want {
		t.Errorf("body\n got %q\nwant %q", got.data, want)
	}
	for _, f := range []string{"queue_id=" + id, "rcpt=a@example.test", "status=sent", "relay=" + "127.0.0.1[" + down.addr + "]", "attempts=1", "reply=\"250 "} {
		if !strings.Contains(w.logs.String(), f) {
			t.Errorf("log lacks %s", f)
		}
	}
}

// A recipient whose local part needs quotes is logged in its envelope form,
// as the session logs it: one grep for the address finds both sides.
func TestDeliveryLogQuotedRcpt(t *testing.T) {
	down := newPeer(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"example.test"}, down.addr)}
	w := newWorld(t, cfg)
	id := w.enqueue("sender@outside.test", []string{"a b@example.test"}, outsideSender, plainBody)
	w.start()
	w.waitFor("delivery", func() bool { return len(down.messages()) == 1 && w.queueEmpty() })
	if want := `queue_id=` + id + ` rcpt="\"a b\"@example.test"`; !strings.Contains(w.logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, w.logs.String())
	}
}

// OB25: every outside domain through a smarthost that wants AUTH after
// STARTTLS, with each mechanism; relay.domains skip it (skip_local).
func TestOB25SmarthostAuth(t *testing.T) {
	for _, mech := range []string{"PLAIN", "LOGIN", "CRAM-MD5"} {
		t.Run(mech, func(t *testing.T) {
			cert, pool := testCert(t, "smarthost.test")
			isp := newPeer(t, withTLS(cert), withAuth(mech))
			inside := newPeer(t)
			cfg := baseConfig(t)
			pw := passwordFile(t, cfg, isp.pass)
			cfg.Routes = []config.Route{
				mkRoute([]string{"*"}, "smarthost.test:587", func(r *config.Route) {
					r.TLS, r.SkipLocal = "required", true
					r.Auth = &config.RouteAuth{Username: isp.user, PasswordFile: pw}
				}),
				mkRoute([]string{"local.test"}, inside.addr),
			}
			w := newWorld(t, cfg, "smarthost.test. 60 IN A 127.0.0.5")
			w.pool = pool
			w.mapAddr("127.0.0.5:587", isp.addr)
			w.enqueue("u@local.test", []string{"x@far.test", "y@other.test", "me@local.test"}, localSender, plainBody)
			w.start()
			w.waitFor("delivery", func() bool { return w.queueEmpty() })
			msgs := isp.messages()
			n := 0
			for _, m := range msgs {
				n += len(m.rcpts)
				if !m.tls || m.user != isp.user {
					t.Errorf("smarthost got mail with tls=%v user=%q", m.tls, m.user)
				}
			}
			if n != 2 {
				t.Errorf("smarthost got %d recipients, want 2 (x@far.test, y@other.test)", n)
			}
			if in := inside.messages(); len(in) != 1 || in[0].rcpts[0] != "me@local.test" {
				t.Errorf("local recipient went elsewhere: %+v", in)
			}
			if isp.authOK.Load() == 0 {
				t.Error("no successful AUTH")
			}
		})
	}
}

// Credentials never go out in clear: without TLS the message waits (4.7.10)
// and the smarthost never sees an AUTH attempt.
func TestOB25RefusesCredentialsInClear(t *testing.T) {
	tests := []struct{ name, tls string }{
		{"opportunistic, no STARTTLS offered", "opportunistic"},
		{"tls none", "none"},
		{"required, no STARTTLS offered", "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The server would take AUTH in clear; we must not send it.
			isp := newPeer(t, withAuth("PLAIN"), func(p *peer) { p.srv.AllowInsecureAuth = true })
			cfg := baseConfig(t)
			pw := passwordFile(t, cfg, isp.pass)
			cfg.Routes = []config.Route{mkRoute([]string{"*"}, isp.addr, func(r *config.Route) {
				r.TLS = tt.tls
				r.Auth = &config.RouteAuth{Username: isp.user, PasswordFile: pw}
			})}
			w := newWorld(t, cfg)
			id := w.enqueue("u@local.test", []string{"x@far.test"}, localSender, plainBody)
			w.start()
			w.waitFor("two attempts", func() bool { return w.get(id).Attempts >= 2 })
			if n := isp.authTry.Load(); n != 0 {
				t.Fatalf("%d AUTH attempts in clear", n)
			}
			if r := w.get(id).Rcpts[0]; r.Status != queue.RcptPending || !strings.Contains(r.LastReply, "4.7.10") {
				t.Errorf("recipient %+v, want pending with 4.7.10", r)
			}
		})
	}
}

// MX: two preferences, the first host down; delivery goes to the second.
func TestMXFirstPreferenceDown(t *testing.T) {
	mx2 := newPeer(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, "mx")}
	w := twoMXWorld(t, cfg, closedPort(t), mx2.addr)
	id := w.enqueue("u@local.test", []string{"x@dom.test"}, localSender, plainBody)
	w.start()
	w.waitFor("delivery via mx2", func() bool { return len(mx2.messages()) == 1 && w.queueEmpty() })
	if !strings.Contains(w.logs.String(), "relay=mx2.dom.test[127.0.0.3:25]") {
		t.Error("log does not name mx2 as the relay")
	}
	// mx1 being down shows at info level, not only in debug logs: the
	// admin sees every message to the domain take the second choice.
	if !logLine(w.logs.String(), "level=INFO", "trying the next one", "queue_id="+id, "host=mx1.dom.test", "connection refused") {
		t.Error("no info line says mx1 failed")
	}
}

// No MX: the domain's own A record (RFC 5321 5.1).
func TestNoMXUsesA(t *testing.T) {
	p := newPeer(t)
	cfg := baseConfig(t)
	w := newWorld(t, cfg, "nomx.test. 60 IN A 127.0.0.4") // no routes: the MX default
	w.mapAddr("127.0.0.4:25", p.addr)
	w.enqueue("u@local.test", []string{"x@nomx.test"}, localSender, plainBody)
	w.start()
	w.waitFor("delivery to the A record", func() bool { return len(p.messages()) == 1 && w.queueEmpty() })
}

// Null MX (RFC 7505): permanent failure, a DSN to the (local) sender.
func TestNullMXBounces(t *testing.T) {
	home := newPeer(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, "mx")}
	w := newWorld(t, cfg, "null.test. 60 IN MX 0 .")
	id := w.enqueue("u@local.test", []string{"x@null.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the DSN", func() bool { return len(home.messages()) == 1 && w.queueEmpty() })
	d := parseDSN(t, home.messages()[0])
	d.want(t, "Action: failed", "Status: 5.1.10", "Final-Recipient: rfc822; x@null.test", "X-Portcullis-Queue-ID: "+id)
}

// mixedRepliesWorld routes local.test to a peer of its own (home) and
// everything else to a peer that answers RCPT 451 for later@ and 550 for
// gone@ (down); one attempt only.
func mixedRepliesWorld(t *testing.T) (w *world, home, down *peer) {
	t.Helper()
	down = newPeer(t)
	down.setRcpt(func(to string) error {
		switch {
		case strings.HasPrefix(to, "later"):
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy"}
		case strings.HasPrefix(to, "gone"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	})
	home = newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(3600e9)} // one attempt in this test
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, down.addr)}
	w = newWorld(t, cfg)
	return w, home, down
}

// One transaction, three verdicts: 250, 451 and 550.
func TestMixedPerRecipientReplies(t *testing.T) {
	w, home, down := mixedRepliesWorld(t)
	id := w.enqueue("u@local.test", []string{"ok@d.test", "later@d.test", "gone@d.test"}, localSender, plainBody)
	w.start()
	// The DSN is committed before the original's new state: wait for both.
	w.waitFor("the DSN for gone@", func() bool { return len(home.messages()) == 1 && w.get(id).Attempts == 1 })
	env := w.get(id)
	want := map[string]queue.RcptStatus{"ok@d.test": queue.RcptDelivered, "later@d.test": queue.RcptPending, "gone@d.test": queue.RcptFailed}
	for _, r := range env.Rcpts {
		if r.Status != want[r.Addr] {
			t.Errorf("%s: %s, want %s (%s)", r.Addr, r.Status, want[r.Addr], r.LastReply)
		}
	}
	if m := down.messages(); len(m) != 1 || strings.Join(m[0].rcpts, ",") != "ok@d.test" {
		t.Errorf("downstream got %+v", m)
	}
	d := parseDSN(t, home.messages()[0])
	d.want(t, "Final-Recipient: rfc822; gone@d.test", "Status: 5.1.1", "Diagnostic-Code: smtp; 550 5.1.1 no such user")
	d.wantNot(t, "later@d.test", "ok@d.test")
}

// 4xx, then success on the retry.
func TestTempFailThenRetrySucceeds(t *testing.T) {
	down := newPeer(t)
	tries := 0
	down.setRcpt(func(string) error {
		if tries++; tries == 1 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted"}
		}
		return nil
	})
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("delivery on retry", func() bool { return len(down.messages()) == 1 && w.queueEmpty() })
	logs := w.logs.String()
	for _, f := range []string{"queue_id=" + id + " rcpt=x@d.test", "status=deferred", "greylisted", "status=sent", "attempts=2"} {
		if !strings.Contains(logs, f) {
			t.Errorf("log lacks %q", f)
		}
	}
}

// Expiry: a DSN to the local sender, none to the forged outside one under
// bounce: local.
func TestExpiryBouncePolicyLocal(t *testing.T) {
	down := newPeer(t)
	down.setRcpt(func(string) error { return &smtp.SMTPError{Code: 421, Message: "overloaded"} })
	home, outside := newPeer(t), newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.MaxAge = config.Duration(250e6)
	cfg.Routes = []config.Route{
		mkRoute([]string{"local.test"}, home.addr),
		mkRoute([]string{"outside.test"}, outside.addr),
		mkRoute([]string{"*"}, down.addr),
	}
	w := newWorld(t, cfg)
	w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.enqueue("forged@outside.test", []string{"y@d.test"}, outsideSender, plainBody)
	w.start()
	// The DSN is queued before the original is removed, so an empty queue
	// means every DSN owed has been delivered.
	w.waitFor("both expired and the queue empty", func() bool { return w.queueEmpty() && len(home.messages()) == 1 })
	if n := len(outside.messages()); n != 0 {
		t.Fatalf("%d DSNs to the outside sender: backscatter", n)
	}
	if !strings.Contains(w.logs.String(), `msg="delivery: no failure DSN"`) || !strings.Contains(w.logs.String(), "no backscatter") {
		t.Errorf("no log line says why the outside sender got no DSN:\n%s", w.logs.String())
	}
	d := parseDSN(t, home.messages()[0])
	d.want(t, "Action: failed", "Status: 5.4.7", "x@d.test",
		"Diagnostic-Code: X-Portcullis; message expired in queue; last reply: 421 4.0.0 overloaded")
	if home.messages()[0].from != "" {
		t.Errorf("DSN sent with MAIL FROM:<%s>, want <>", home.messages()[0].from)
	}
}

// The delay notice goes out once, however many retries follow.
func TestDelayNoticeOnce(t *testing.T) {
	down := newPeer(t)
	down.setRcpt(func(string) error { return &smtp.SMTPError{Code: 450, Message: "not now"} })
	home := newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(20e6)}
	cfg.Queue.DelayNotice = config.Duration(100e6)
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the notice and several retries after it", func() bool {
		e := w.get(id)
		return e.DelayNotified && e.Attempts >= 12 && len(home.messages()) >= 1
	})
	if n := len(home.messages()); n != 1 {
		t.Fatalf("%d delay notices, want 1", n)
	}
	d := parseDSN(t, home.messages()[0])
	d.want(t, "Action: delayed", "Will-Retry-Until:", "Subject: Delayed Mail")
}

// DSN parameters from the client go on to a next hop that offers DSN.
func TestDSNParametersPassedOn(t *testing.T) {
	down := newPeer(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody, func(e *queue.Envelope) {
		e.DSNRet, e.DSNEnvID = "HDRS", "env+id=1"
		e.Rcpts[0].Notify = []string{"SUCCESS", "FAILURE"}
		e.Rcpts[0].ORCPT = "rfc822;X@d.test"
	})
	w.start()
	w.waitFor("delivery", func() bool { return len(down.messages()) == 1 })
	m := down.messages()[0]
	if m.mailOpts.Return != smtp.DSNReturnHeaders || m.mailOpts.EnvelopeID != "env+id=1" {
		t.Errorf("MAIL options %+v", m.mailOpts)
	}
	ro := m.rcptOpts[0]
	if len(ro.Notify) != 2 || ro.Notify[0] != smtp.DSNNotifySuccess || ro.OriginalRecipient != "X@d.test" {
		t.Errorf("RCPT options %+v", ro)
	}
}

// An original recipient beyond ASCII goes on as RFC 6533's utf-8 type in
// utf-8-addr-xtext, which a strict next hop (go-smtp, as here) takes: the
// RFC 3461 xtext of its bytes ("utf-8;b+C3+B8b@...") was refused with 501
// 5.5.4 and the mail bounced. One kept as rfc822 with UTF-8 (the form
// Postfix sends) goes on as utf-8 too.
func TestUTF8ORCPTPassedOn(t *testing.T) {
	down := newPeer(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	w.enqueue("u@local.test", []string{"x@d.test", "y@d.test"}, localSender, plainBody, func(e *queue.Envelope) {
		e.Rcpts[0].ORCPT = "utf-8;b\u00f8b+1=\\x@d.test"
		e.Rcpts[1].ORCPT = "rfc822;\u65e5\u672c@d.test"
	})
	w.start()
	w.waitFor("delivery", func() bool { return len(down.messages()) == 1 })
	ro := down.messages()[0].rcptOpts
	want := []string{"b\u00f8b+1=\\x@d.test", "\u65e5\u672c@d.test"}
	for i, o := range ro {
		if o.OriginalRecipientType != smtp.DSNAddressTypeUTF8 || o.OriginalRecipient != want[i] {
			t.Errorf("recipient %d: ORCPT %s;%q, want utf-8;%q", i, o.OriginalRecipientType, o.OriginalRecipient, want[i])
		}
	}
}

// Several messages to one destination share one connection.
func TestConnectionReuse(t *testing.T) {
	down := newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.Workers = 1
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	for range 5 {
		w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	}
	w.start()
	w.waitFor("five deliveries", func() bool { return len(down.messages()) == 5 && w.queueEmpty() })
	if n := down.accepts.Load(); n != 1 {
		t.Errorf("%d connections for 5 messages, want 1", n)
	}
}

// A pooled connection the server has dropped (its idle timeout) is
// replaced by a new one, not counted as a failure.
func TestStalePooledConnection(t *testing.T) {
	down := newPeer(t, func(p *peer) { p.srv.ReadTimeout = 50 * time.Millisecond })
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("first delivery", func() bool { return len(down.messages()) == 1 && w.queueEmpty() })
	time.Sleep(200 * time.Millisecond) // let the server drop the idle connection
	id := w.enqueue("u@local.test", []string{"y@d.test"}, localSender, plainBody)
	w.waitFor("second delivery", func() bool { return len(down.messages()) == 2 && w.queueEmpty() })
	if n := down.accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (the stale one replaced)", n)
	}
	if strings.Contains(w.logs.String(), "queue_id="+id+" rcpt=y@d.test relay=127.0.0.1["+down.addr+"] tls=false reply=\"451") {
		t.Error("the stale connection was counted as a failed attempt")
	}
}

// NOTIFY=SUCCESS: a next hop with DSN gets the parameter and reports
// itself; one without gets the message and we send a "relayed" DSN.
func TestNotifySuccessRelayed(t *testing.T) {
	for _, hopDSN := range []bool{true, false} {
		t.Run(map[bool]string{true: "hop offers DSN", false: "hop without DSN"}[hopDSN], func(t *testing.T) {
			down := newPeer(t, func(p *peer) { p.srv.EnableDSN = hopDSN })
			home := newPeer(t)
			cfg := baseConfig(t)
			cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, down.addr)}
			w := newWorld(t, cfg)
			w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody, func(e *queue.Envelope) {
				e.Rcpts[0].Notify = []string{"SUCCESS"}
			})
			w.start()
			w.waitFor("delivery", func() bool { return len(down.messages()) == 1 && w.queueEmpty() })
			if hopDSN {
				if n := len(home.messages()); n != 0 {
					t.Errorf("%d DSNs from us although the next hop does DSN", n)
				}
				return
			}
			w.waitFor("the relayed DSN", func() bool { return len(home.messages()) == 1 })
			parseDSN(t, home.messages()[0]).want(t, "Action: relayed", "Status: 2.0.0", "Final-Recipient: rfc822; x@d.test")
		})
	}
}

// The "relayed" DSN obeys queue.bounce as failures do: with bounce: local
// a sender neither trusted nor authenticated (any outside address, forged
// or not) asking NOTIFY=SUCCESS of a hop without DSN gets nothing, or
// anyone could make us send mail to an address of their choosing
// (backscatter).
func TestNotifySuccessFromOutsiderNotRelayed(t *testing.T) {
	down := newPeer(t, func(p *peer) { p.srv.EnableDSN = false }) // no DSN: ours to report
	forged := newPeer(t)
	cfg := baseConfig(t)
	if cfg.Queue.Bounce != "local" {
		t.Fatalf("test config has bounce %q, want local", cfg.Queue.Bounce)
	}
	cfg.Routes = []config.Route{mkRoute([]string{"victim.test"}, forged.addr), mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	id := w.enqueue("someone@victim.test", []string{"x@d.test"}, outsideSender, plainBody, func(e *queue.Envelope) {
		e.Rcpts[0].Notify = []string{"SUCCESS"}
	})
	w.start()
	// A DSN is queued before its original is removed, so once the log says
	// removed, any DSN is in the queue or already with the forged peer.
	w.waitFor("delivery", func() bool {
		return len(down.messages()) == 1 && strings.Contains(w.logs.String(), "msg=removed queue_id="+id)
	})
	if n := len(forged.messages()); n != 0 || !w.queueEmpty() || strings.Contains(w.logs.String(), "DSN queued") {
		t.Errorf("DSN for an outside sender under bounce: local: %d sent, queue empty %v", n, w.queueEmpty())
	}
}
