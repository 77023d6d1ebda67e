package smtpd

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/sdk"
)

// ruleRunner is a pipeline.Runner whose rules are Go functions per phase.
type ruleRunner struct {
	mu    sync.Mutex
	rules map[sdk.Phase]func(*sdk.Request) *pipeline.Decision
	seen  []*sdk.Request
	fail  bool
}

func (r *ruleRunner) Wants(p sdk.Phase) bool { return r.rules[p] != nil || r.fail }

func (r *ruleRunner) Run(ctx context.Context, req *sdk.Request, results map[string]*sdk.Result) (*pipeline.Decision, error) {
	r.mu.Lock()
	r.seen = append(r.seen, req)
	r.mu.Unlock()
	if r.fail {
		return nil, errors.New("stage host crashed: secret detail")
	}
	results["test"] = &sdk.Result{Verdict: sdk.VerdictPass, Reason: "seen " + string(req.Phase)}
	return r.rules[req.Phase](req), nil
}

func cont() *pipeline.Decision { return &pipeline.Decision{Action: pipeline.Continue} }

func TestPipelineDecisions(t *testing.T) {
	dataIDs := map[string]string{} // subject -> the queue ID the data phase saw
	run := &ruleRunner{rules: map[sdk.Phase]func(*sdk.Request) *pipeline.Decision{
		sdk.PhaseConnect: func(r *sdk.Request) *pipeline.Decision { return cont() },
		sdk.PhaseRcpt: func(r *sdk.Request) *pipeline.Decision {
			switch {
			case strings.HasPrefix(r.Envelope.Rcpt, "nobody@"):
				return &pipeline.Decision{Action: pipeline.Reject, Reply: &pipeline.Reply{Code: 550, Enhanced: "5.1.1", Text: "No such user"}}
			case strings.HasPrefix(r.Envelope.Rcpt, "later@"):
				return &pipeline.Decision{Action: pipeline.Tempfail}
			case strings.HasPrefix(r.Envelope.Rcpt, "trap@"):
				return &pipeline.Decision{Action: pipeline.Discard, Reason: "spam trap"}
			}
			return cont()
		},
		sdk.PhaseData: func(r *sdk.Request) *pipeline.Decision {
			subj := r.Message.Get("Subject")
			dataIDs[subj] = r.QueueID
			rc, err := r.Message.Open()
			if err != nil {
				return &pipeline.Decision{Action: pipeline.Tempfail}
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if !strings.Contains(string(b), "\r\n\r\nHello.") {
				return &pipeline.Decision{Action: pipeline.Reject, Reason: "stage could not read the body"}
			}
			switch subj {
			case "spam":
				return &pipeline.Decision{Action: pipeline.Reject}
			case "wait":
				return &pipeline.Decision{Action: pipeline.Tempfail, Reply: &pipeline.Reply{Code: 451, Enhanced: "4.7.1", Text: "Greylisted"}}
			case "drop":
				return &pipeline.Decision{Action: pipeline.Discard, Reason: "virus"}
			case "hold":
				return &pipeline.Decision{Action: pipeline.Quarantine, Reason: "suspicious", Tags: []string{"q"},
					Results: map[string]*sdk.Result{"av": {Verdict: sdk.VerdictFail, Score: 2.5, Tags: []string{"virus", "eicar"},
						Attrs: map[string]string{"signature": "Eicar-Test-Signature", "engine": "clamd"}, Reason: "EICAR"}}}
			case "tag":
				return &pipeline.Decision{Action: pipeline.Accept, SubjectPrefix: "[SPAM]",
					Headers: []sdk.HeaderEdit{{Op: sdk.HeaderAdd, Name: "X-Spam", Value: "yes\r\nInjected: 1"}, {Op: sdk.HeaderRemove, Name: "X-Remove-Me"}}}
			case "redirect":
				return &pipeline.Decision{Action: pipeline.Continue, Redirect: []string{"abuse@example.test"}}
			case "redirect-utf8":
				return &pipeline.Decision{Action: pipeline.Continue, Redirect: []string{"pelé@example.test"}}
			}
			return cont()
		},
	}}
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Pipeline = run })
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	send := func(subject, want string) string {
		t.Helper()
		r.cmd("MAIL FROM:<a@example.org>", "250")
		r.cmd("RCPT TO:<bob@example.test>", "250")
		r.cmd("DATA", "354")
		r.send("X-Remove-Me: 1\r\n" + message(subject) + ".\r\n")
		return r.expect(want)
	}
	t.Run("rcpt decisions are per recipient", func(t *testing.T) {
		r.cmd("MAIL FROM:<a@example.org>", "250")
		r.cmd("RCPT TO:<nobody@example.test>", "550 5.1.1 No such user")
		r.cmd("RCPT TO:<later@example.test>", "451 4.7.1")
		r.cmd("RCPT TO:<bob@example.test>", "250")
		r.cmd("RSET", "250")
	})
	t.Run("reject", func(t *testing.T) { send("spam", "550 5.7.1 Message rejected by policy") })
	t.Run("tempfail with rule reply", func(t *testing.T) { send("wait", "451 4.7.1 Greylisted") })
	t.Run("discard", func(t *testing.T) { send("drop", "250 2.0.0") })
	t.Run("discard decided at rcpt", func(t *testing.T) {
		r.cmd("MAIL FROM:<a@example.org>", "250")
		r.cmd("RCPT TO:<trap@example.test>", "250")
		r.cmd("DATA", "354")
		r.send(message("plain") + ".\r\n")
		r.expect("250 2.0.0")
	})
	if n := len(ts.queued(t)); n != 0 {
		t.Fatalf("%d queued after reject/tempfail/discard", n)
	}
	t.Run("quarantine", func(t *testing.T) {
		id := strings.Fields(send("hold", "250 2.0.0"))[2]
		envs, _ := ts.quar.List()
		if len(envs) != 1 || envs[0].Reason != "suspicious" || envs[0].Results["av"] != `fail score=2.5 tags=virus,eicar engine="clamd" signature="Eicar-Test-Signature": EICAR` {
			t.Fatalf("quarantine: %+v", envs)
		}
		// One ID from the data phase to the reply and the stored copy
		// (CONTRACT: the same QUEUEID in Received and every log line).
		if envs[0].ID != id || dataIDs["hold"] != id {
			t.Errorf("reply %s, quarantined as %s, data phase saw %s", id, envs[0].ID, dataIDs["hold"])
		}
	})
	t.Run("tag rewrites the header", func(t *testing.T) {
		id := strings.Fields(send("tag", "250 2.0.0"))[2]
		rc, err := ts.q.Open(id)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		msg := string(b)
		if dataIDs["tag"] != id {
			t.Errorf("reply %s, data phase saw %s", id, dataIDs["tag"])
		}
		for _, want := range []string{"X-Spam: yes  Injected: 1\r\nReceived: ", "id " + id, "Subject: [SPAM] tag\r\n", "\r\n\r\nHello.\r\n"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message lacks %q:\n%s", want, msg)
			}
		}
		if strings.Contains(msg, "X-Remove-Me") || strings.Contains(msg, "\nInjected") {
			t.Errorf("removal or sanitizing failed:\n%s", msg)
		}
	})
	t.Run("redirect", func(t *testing.T) {
		id := strings.Fields(send("redirect", "250 2.0.0"))[2]
		env, err := ts.q.Get(id)
		if err != nil || len(env.Rcpts) != 1 || env.Rcpts[0].Addr != "abuse@example.test" {
			t.Fatalf("envelope %+v %v", env, err)
		}
		// The original recipient, as ORCPT (RFC 3461 6.2: an MTA that
		// redirects keeps what the sender asked for and wrote to).
		if r := env.Rcpts[0]; r.ORCPT != "rfc822;bob@example.test" || r.Notify != nil {
			t.Errorf("redirected recipient %+v, want ORCPT rfc822;bob@example.test, no NOTIFY", r)
		}
	})
	t.Run("redirect to a UTF-8 address needs SMTPUTF8", func(t *testing.T) {
		// The client sent no SMTPUTF8; the address it is redirected to
		// needs it on the way out (RFC 6531 3.2), or delivery would put
		// raw UTF-8 into a RCPT TO that did not announce it.
		id := strings.Fields(send("redirect-utf8", "250 2.0.0"))[2]
		env, err := ts.q.Get(id)
		if err != nil || len(env.Rcpts) != 1 || env.Rcpts[0].Addr != "pelé@example.test" {
			t.Fatalf("envelope %+v %v", env, err)
		}
		if !env.SMTPUTF8 {
			t.Error("envelope redirected to pelé@example.test is not SMTPUTF8")
		}
	})
	t.Run("redirect keeps NOTIFY=NEVER", func(t *testing.T) {
		r.cmd("MAIL FROM:<a@example.org>", "250")
		r.cmd("RCPT TO:<bob@example.test> NOTIFY=NEVER ORCPT=rfc822;bob-orig@example.test", "250")
		r.cmd("DATA", "354")
		r.send(message("redirect") + ".\r\n")
		id := strings.Fields(r.expect("250 2.0.0"))[2]
		env, err := ts.q.Get(id)
		if err != nil || len(env.Rcpts) != 1 {
			t.Fatalf("envelope %+v %v", env, err)
		}
		if rc := env.Rcpts[0]; rc.Addr != "abuse@example.test" || !slices.Equal(rc.Notify, []string{"NEVER"}) || rc.ORCPT != "rfc822;bob-orig@example.test" {
			t.Errorf("redirected recipient %+v, want NOTIFY NEVER and the sender's ORCPT", rc)
		}
	})
}

func TestPipelineFailureIsTempfail(t *testing.T) {
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Pipeline = &ruleRunner{fail: true} })
	r := newRaw(t, ts.addr(), 2)
	got := r.expect("421 4.3.0")
	if strings.Contains(got, "secret") {
		t.Fatalf("internal error text reached the client: %q", got)
	}
}

func TestConnectReject(t *testing.T) {
	run := &ruleRunner{rules: map[sdk.Phase]func(*sdk.Request) *pipeline.Decision{
		sdk.PhaseConnect: func(r *sdk.Request) *pipeline.Decision {
			switch r.Conn.IP {
			case "127.0.0.5":
				return &pipeline.Decision{Action: pipeline.Reject}
			case "127.0.0.7":
				return &pipeline.Decision{Action: pipeline.Reject, Reply: &pipeline.Reply{Code: 521, Enhanced: "5.3.2", Text: "No mail here"}}
			}
			return &pipeline.Decision{Action: pipeline.Tempfail}
		},
	}}
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Pipeline = run })
	r := newRaw(t, ts.addr(), 5)
	r.expect("554 5.7.1 Service unavailable")
	r.refusedUntilQuit(0)
	r = newRaw(t, ts.addr(), 6)
	r.expect("421 4.7.0 Try again later")
	// A 421 closes the channel (RFC 5321 3.8): no wait for QUIT.
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.br.ReadByte(); err != io.EOF {
		t.Fatalf("after 421: %v, want EOF", err)
	}
	// Nor a 521 (RFC 7504 3: this host accepts no mail; the server may
	// close at once), which ends the session as at any other phase.
	r = newRaw(t, ts.addr(), 7)
	r.expect("521 5.3.2 No mail here")
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.br.ReadByte(); err != io.EOF {
		t.Fatalf("after 521: %v, want EOF", err)
	}
}

// TestRule421Closes: a rule whose reply is 421 says the service is
// closing the channel (RFC 5321 3.8), and so it does, at MAIL, RCPT and
// DATA alike; a 451 leaves the session open.
func TestRule421Closes(t *testing.T) {
	reply := func(code int, enh string) *pipeline.Decision {
		return &pipeline.Decision{Action: pipeline.Tempfail, Reply: &pipeline.Reply{Code: code, Enhanced: enh, Text: "closing"}}
	}
	run := &ruleRunner{rules: map[sdk.Phase]func(*sdk.Request) *pipeline.Decision{
		sdk.PhaseMail: func(r *sdk.Request) *pipeline.Decision {
			switch r.Envelope.From {
			case "close@example.org":
				return reply(421, "4.7.0")
			case "wait@example.org":
				return reply(451, "4.7.1")
			}
			return cont()
		},
		sdk.PhaseRcpt: func(r *sdk.Request) *pipeline.Decision {
			if strings.HasPrefix(r.Envelope.Rcpt, "close@") {
				return reply(421, "4.7.0")
			}
			return cont()
		},
		sdk.PhaseData: func(r *sdk.Request) *pipeline.Decision {
			if r.Message.Get("Subject") == "close" {
				return reply(421, "4.7.0")
			}
			return cont()
		},
	}}
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Pipeline = run })

	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<wait@example.org>", "451 4.7.1 closing")
	r.cmd("MAIL FROM:<close@example.org>", "421 4.7.0 closing")
	if !r.hungUp() {
		t.Fatal("a 421 at MAIL left the session open")
	}

	r = newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<close@example.test>", "421 4.7.0 closing")
	if !r.hungUp() {
		t.Fatal("a 421 at RCPT left the session open")
	}

	r = newRaw(t, ts.addr(), 2)
	r.toData()
	r.send("Subject: close\r\n\r\nHello.\r\n.\r\n")
	r.expect("421 4.7.0 closing")
	if !r.hungUp() {
		t.Fatal("a 421 at DATA left the session open")
	}
	if n := len(ts.queued(t)); n != 0 {
		t.Fatalf("%d queued", n)
	}
}

// TestRuleReplyFits: a rule's reply text (a template may put a subject of
// any length in it) is cut so the reply line fits RFC 5321's 512 octets,
// CRLF included, at a character boundary.
func TestRuleReplyFits(t *testing.T) {
	run := &ruleRunner{rules: map[sdk.Phase]func(*sdk.Request) *pipeline.Decision{
		sdk.PhaseMail: func(r *sdk.Request) *pipeline.Decision {
			enh, text := "5.7.1", "subject "+strings.Repeat("x", 900)
			if strings.HasPrefix(r.Envelope.From, "noenh@") {
				enh = ""
			}
			if strings.HasPrefix(r.Envelope.From, "utf8") {
				text = "subject " + strings.Repeat("あ", 300) // 900 bytes
			}
			return &pipeline.Decision{Action: pipeline.Reject, Reply: &pipeline.Reply{Code: 550, Enhanced: enh, Text: text}}
		},
	}}
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Pipeline = run })
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	for _, mail := range []string{"a@example.org>", "noenh@example.org>", "utf8@example.org> SMTPUTF8"} {
		got := r.cmd("MAIL FROM:<"+mail, "550 5.")
		if n := len(got) + len("\r\n"); n > 512 || n < 500 {
			t.Errorf("%s: reply line of %d octets with CRLF, want at most 512 and close to it", mail, n)
		}
		if !utf8.ValidString(got) || !strings.HasPrefix(got, "550 5.") {
			t.Errorf("reply %q", got)
		}
	}
}

// rcptResultRunner gives each recipient its own stage result and refuses
// those starting with "bad"; at data it notes what results.st holds.
type rcptResultRunner struct {
	mu      sync.Mutex
	dataSaw string
}

func (r *rcptResultRunner) Wants(p sdk.Phase) bool { return p == sdk.PhaseRcpt || p == sdk.PhaseData }

func (r *rcptResultRunner) Run(_ context.Context, req *sdk.Request, results map[string]*sdk.Result) (*pipeline.Decision, error) {
	if req.Phase == sdk.PhaseRcpt {
		bad := strings.HasPrefix(req.Envelope.Rcpt, "bad")
		v := sdk.VerdictPass
		if bad {
			v = sdk.VerdictFail
		}
		results["st"] = &sdk.Result{Verdict: v, Reason: req.Envelope.Rcpt}
		if bad {
			return &pipeline.Decision{Action: pipeline.Reject}, nil
		}
		return cont(), nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := results["st"]; st != nil {
		r.dataSaw = string(st.Verdict) + " " + st.Reason
	}
	return cont(), nil
}

// TestRefusedRcptResultsDropped: the stage results of a recipient a rule
// refused are not what the data phase's rules see; those of the last
// accepted recipient are.
func TestRefusedRcptResultsDropped(t *testing.T) {
	run := &rcptResultRunner{}
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Pipeline = run })
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<good@example.test>", "250")
	r.cmd("RCPT TO:<bad@example.test>", "550")
	r.cmd("DATA", "354")
	r.send("Subject: x\r\n\r\nHello.\r\n.\r\n")
	r.expect("250 2.0.0")
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.dataSaw != "pass good@example.test" {
		t.Fatalf("the data phase saw results.st = %q, want the accepted recipient's", run.dataSaw)
	}
}

// TestRuleReplyASCII: a rule's reply text holding other than printable
// ASCII (a template with a decoded Subject or file name) goes out with '?'
// for each such character, unless the client asked for SMTPUTF8.
func TestRuleReplyASCII(t *testing.T) {
	run := &ruleRunner{rules: map[sdk.Phase]func(*sdk.Request) *pipeline.Decision{
		sdk.PhaseRcpt: func(r *sdk.Request) *pipeline.Decision {
			return &pipeline.Decision{Action: pipeline.Reject, Reply: &pipeline.Reply{Code: 550, Enhanced: "5.7.1", Text: "Blocked 請求書.exe\tnow"}}
		},
	}}
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Pipeline = run })
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	if got := r.cmd("RCPT TO:<b@example.test>", "550"); got != "550 5.7.1 Blocked ???.exe?now" {
		t.Errorf("reply %q", got)
	}
	r.cmd("RSET", "250")
	r.cmd("MAIL FROM:<a@example.org> SMTPUTF8", "250")
	if got := r.cmd("RCPT TO:<b@example.test>", "550"); got != "550 5.7.1 Blocked 請求書.exe\tnow" {
		t.Errorf("reply with SMTPUTF8 %q", got)
	}
}

// TestRuleReply521Closes: a rule's 521 (RFC 7504: this host accepts no
// mail) ends the session, as a 421 does; a data-phase refusal is logged
// with its code and the sender, as the other phases' are.
func TestRuleReply521Closes(t *testing.T) {
	run := &ruleRunner{rules: map[sdk.Phase]func(*sdk.Request) *pipeline.Decision{
		sdk.PhaseMail: func(r *sdk.Request) *pipeline.Decision {
			if r.Envelope.From == "521@example.org" {
				return &pipeline.Decision{Action: pipeline.Reject, Reply: &pipeline.Reply{Code: 521, Enhanced: "5.7.1", Text: "closing now"}}
			}
			return cont()
		},
		sdk.PhaseData: func(*sdk.Request) *pipeline.Decision { return &pipeline.Decision{Action: pipeline.Reject} },
	}}
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Pipeline = run })
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<bob@example.test>", "250")
	r.cmd("DATA", "354")
	r.send(message("x") + ".\r\n")
	r.expect("550 5.7.1")
	if logs := ts.logs.String(); !strings.Contains(logs, `phase=data reply="550 5.7.1 Message rejected by policy" code=550 from=a@example.org`) {
		t.Errorf("data-phase refusal logged:\n%s", logs)
	}
	r.cmd("MAIL FROM:<521@example.org>", "521 5.7.1 closing now")
	if !r.closed() {
		t.Error("session left open after a 521")
	}
}

// TestQuarantineWithoutStore: a rule that quarantines on a gateway with no
// quarantine store must not deliver the message: it is answered 451
// 4.3.0 (the sender keeps it and retries, the operator sees the error)
// and nothing reaches the delivery queue. Falling back to the queue would
// deliver exactly the mail a rule wanted held: malware, say. Both ways a
// quarantine is decided are checked: in the data phase, and at RCPT
// (held until DATA); a message nobody wanted held still goes through.
func TestQuarantineWithoutStore(t *testing.T) {
	run := &ruleRunner{rules: map[sdk.Phase]func(*sdk.Request) *pipeline.Decision{
		sdk.PhaseRcpt: func(r *sdk.Request) *pipeline.Decision {
			if strings.HasPrefix(r.Envelope.Rcpt, "held@") {
				return &pipeline.Decision{Action: pipeline.Quarantine, Reason: "held at rcpt"}
			}
			return cont()
		},
		sdk.PhaseData: func(r *sdk.Request) *pipeline.Decision {
			if r.Message.Get("Subject") == "hold" {
				return &pipeline.Decision{Action: pipeline.Quarantine, Reason: "suspicious"}
			}
			return cont()
		},
	}}
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Pipeline, d.Quarantine = run, nil })
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	send := func(rcpt, subject, want string) {
		t.Helper()
		r.cmd("MAIL FROM:<a@example.org>", "250")
		r.cmd("RCPT TO:<"+rcpt+">", "250")
		r.cmd("DATA", "354")
		r.send(message(subject) + ".\r\n")
		r.expect(want)
	}
	send("bob@example.test", "hold", "451 4.3.0 Temporary local problem, try again later")
	send("held@example.test", "plain", "451 4.3.0 Temporary local problem, try again later")
	if envs := ts.queued(t); len(envs) != 0 {
		t.Fatalf("%d messages a rule quarantined were queued for delivery", len(envs))
	}
	if envs, _ := ts.quar.List(); len(envs) != 0 {
		t.Fatalf("%d messages in a quarantine store the server was not given", len(envs))
	}
	send("bob@example.test", "plain", "250 2.0.0")
	if n := len(ts.queued(t)); n != 1 {
		t.Fatalf("%d queued, want the one message nobody held", n)
	}
}
