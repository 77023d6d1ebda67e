package smtpd

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/sdk"
)

// learnCall is one Deps.Learn call as the test saw it.
type learnCall struct {
	spam bool
	id   string
	raw  string
	err  error
}

// learnRunner tags the data phase by subject: "ls" learn:spam, "lh"
// learn:ham, "hold-ls" quarantine plus learn:spam, "both" both tags.
func learnRunner() *ruleRunner {
	return &ruleRunner{rules: map[sdk.Phase]func(*sdk.Request) *pipeline.Decision{
		sdk.PhaseRcpt: func(r *sdk.Request) *pipeline.Decision {
			if strings.HasPrefix(r.Envelope.Rcpt, "held@") {
				return &pipeline.Decision{Action: pipeline.Quarantine, Reason: "held at rcpt", Tags: []string{"q"}}
			}
			return cont()
		},
		sdk.PhaseData: func(r *sdk.Request) *pipeline.Decision {
			switch r.Message.Get("Subject") {
			case "ls":
				return &pipeline.Decision{Action: pipeline.Continue, Tags: []string{"learn:spam"}}
			case "lh":
				return &pipeline.Decision{Action: pipeline.Continue, Tags: []string{"tag:x", "learn:ham"}, SubjectPrefix: "[TAG] ",
					Headers: []sdk.HeaderEdit{{Op: sdk.HeaderAdd, Name: "X-Tag", Value: "x"}}}
			case "hold-ls":
				return &pipeline.Decision{Action: pipeline.Quarantine, Reason: "held", Tags: []string{"learn:spam"}}
			case "both":
				return &pipeline.Decision{Action: pipeline.Continue, Tags: []string{"learn:spam", "learn:ham"}}
			case "drop-ls":
				return &pipeline.Decision{Action: pipeline.Discard, Tags: []string{"learn:spam"}}
			case "reject-ls":
				return &pipeline.Decision{Action: pipeline.Reject, Tags: []string{"learn:spam"}}
			case "tempfail-ls":
				return &pipeline.Decision{Action: pipeline.Tempfail, Tags: []string{"learn:spam"}}
			}
			return cont()
		},
	}}
}

// startLearning runs a server whose Learn reports each call on the returned
// channel, after waiting for a value on gate (nil: no wait).
func startLearning(t *testing.T, gate chan struct{}) (*testServer, chan learnCall) {
	calls := make(chan learnCall, 16)
	ts := startServer(t, testConfig(t), func(d *Deps) {
		d.Pipeline = learnRunner()
		d.Learn = func(ctx context.Context, spam bool, id string, open func() (io.ReadCloser, error)) {
			if gate != nil {
				<-gate
			}
			c := learnCall{spam: spam, id: id}
			rc, err := open()
			if err == nil {
				b, _ := io.ReadAll(rc)
				rc.Close()
				c.raw = string(b)
			}
			c.err = err
			calls <- c
		}
	})
	return ts, calls
}

// nextLearn is the next Learn call, failing the test when none comes.
func nextLearn(t *testing.T, calls chan learnCall) learnCall {
	t.Helper()
	select {
	case c := <-calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no Learn call")
		return learnCall{}
	}
}

func sendSubject(t *testing.T, r *rawClient, subject string) string {
	t.Helper()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<bob@example.test>", "250")
	r.cmd("DATA", "354")
	r.send(message(subject) + ".\r\n")
	return strings.Fields(r.expect("250 2.0.0"))[2]
}

func TestLearnAfterCommit(t *testing.T) {
	ts, calls := startLearning(t, nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	for _, tc := range []struct {
		subject string
		spam    bool
	}{{"ls", true}, {"lh", false}, {"hold-ls", true}, {"both", false}} {
		t.Run(tc.subject, func(t *testing.T) {
			id := sendSubject(t, r, tc.subject)
			c := <-calls
			if c.err != nil || c.id != id || c.spam != tc.spam {
				t.Fatalf("learn call %+v; want id %s spam %v", c, id, tc.spam)
			}
			// What the data phase judged: our Received on top, none of
			// the rules' header edits.
			if !strings.HasPrefix(c.raw, "Received: ") || !strings.Contains(c.raw, "Subject: "+tc.subject+"\r\n") ||
				!strings.HasSuffix(c.raw, "\r\n\r\nHello.\r\n") || strings.Contains(c.raw, "X-Tag") {
				t.Fatalf("open gave the wrong bytes:\n%s", c.raw)
			}
		})
	}
	t.Run("held at rcpt, learn tag at data", func(t *testing.T) {
		r.cmd("MAIL FROM:<a@example.org>", "250")
		r.cmd("RCPT TO:<held@example.test>", "250")
		r.cmd("DATA", "354")
		r.send(message("ls") + ".\r\n")
		id := strings.Fields(r.expect("250 2.0.0"))[2]
		if c := <-calls; c.id != id || !c.spam {
			t.Fatalf("learn call %+v; want spam %s", c, id)
		}
		env, err := ts.quar.Get(id)
		if err != nil || env.Reason != "held at rcpt" || strings.Join(env.Tags, ",") != "q,learn:spam" {
			t.Fatalf("quarantined %+v %v", env, err)
		}
	})
	t.Run("no tag, tempfail: no learning", func(t *testing.T) {
		sendSubject(t, r, "plain")
		// A tempfailed message comes back: it is learned then, if at all.
		r.cmd("MAIL FROM:<a@example.org>", "250")
		r.cmd("RCPT TO:<bob@example.test>", "250")
		r.cmd("DATA", "354")
		r.send(message("tempfail-ls") + ".\r\n")
		r.expect("451 ")
		id := sendSubject(t, r, "ls") // calls are in order: the next one is this
		if c := <-calls; c.id != id {
			t.Fatalf("learned %s, want only %s", c.id, id)
		}
	})
	// A spam trap's rules: learn_spam, then discard or reject. The
	// message is learned though nothing is queued; the learn_spam was
	// dropped with it, while the decision's log line said it applied.
	t.Run("discard learns", func(t *testing.T) {
		id := sendSubject(t, r, "drop-ls")
		c := nextLearn(t, calls)
		if c.err != nil || c.id != id || !c.spam || !strings.HasSuffix(c.raw, "\r\n\r\nHello.\r\n") {
			t.Fatalf("learn call %+v; want spam %s with the message", c, id)
		}
	})
	t.Run("reject learns", func(t *testing.T) {
		r.cmd("MAIL FROM:<a@example.org>", "250")
		r.cmd("RCPT TO:<bob@example.test>", "250")
		r.cmd("DATA", "354")
		r.send(message("reject-ls") + ".\r\n")
		r.expect("550 5.7.1")
		c := nextLearn(t, calls)
		if c.err != nil || !c.spam || !strings.Contains(c.raw, "Subject: reject-ls\r\n") || !strings.HasSuffix(c.raw, "\r\n\r\nHello.\r\n") {
			t.Fatalf("learn call %+v; want spam with the message", c)
		}
	})
	if !strings.Contains(ts.logs.String(), "learn=spam") || !strings.Contains(ts.logs.String(), "learn=ham") {
		t.Errorf("no learn log lines:\n%s", ts.logs.String())
	}
}

// TestLearnNeverDelaysTheReply holds every Learn call until the clients
// have their 250s; a full set of slots drops the next event with a log line.
func TestLearnNeverDelaysTheReply(t *testing.T) {
	gate := make(chan struct{})
	ts, calls := startLearning(t, gate)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	ids := map[string]bool{}
	for range learnSlots {
		ids[sendSubject(t, r, "ls")] = true // would hang here if Learn ran inline
	}
	dropped := sendSubject(t, r, "lh")
	close(gate)
	for range learnSlots {
		c := <-calls
		if !ids[c.id] || c.err != nil {
			t.Fatalf("unexpected learn call %+v", c)
		}
	}
	// A slot is free again once the calls above return.
	ctx, cancel := context.WithTimeout(context.Background(), learnTimeout)
	defer cancel()
	for len(ts.learnSem) > 0 && ctx.Err() == nil {
		r.cmd("NOOP", "250")
	}
	id := sendSubject(t, r, "lh")
	if c := <-calls; c.id != id || c.spam {
		t.Fatalf("after the slots freed: %+v, want ham %s", c, id)
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, "learning skipped") || !strings.Contains(logs, "queue_id="+dropped) {
		t.Errorf("dropped event %s not logged:\n%s", dropped, logs)
	}
}

// TestLearnAfterDelivery: the message stays readable for Learn when it
// leaves the store (delivered, or deleted) before the learner runs.
func TestLearnAfterDelivery(t *testing.T) {
	gate := make(chan struct{})
	ts, calls := startLearning(t, gate)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	id := sendSubject(t, r, "ls")
	if err := ts.q.Delete(id); err != nil {
		t.Fatal(err)
	}
	close(gate)
	c := <-calls
	if c.err != nil || c.id != id || !strings.Contains(c.raw, "Subject: ls\r\n") {
		t.Fatalf("learn after the message left the queue: %+v", c)
	}
}
