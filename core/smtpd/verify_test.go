package smtpd

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/smtperr"
	"github.com/portcullis-mta/portcullis/sdk"
)

// fakeVerifier refuses unknown@ and records what it was asked.
type fakeVerifier struct {
	mu    sync.Mutex
	asked []string
}

func (v *fakeVerifier) Verify(_ context.Context, log *slog.Logger, rcpt string) error {
	v.mu.Lock()
	v.asked = append(v.asked, rcpt)
	v.mu.Unlock()
	log.Info("verify", "rcpt", rcpt)
	if strings.HasPrefix(rcpt, "unknown@") {
		return smtperr.New(550, "5.1.1", "<"+rcpt+">: Recipient address rejected: undeliverable address: the mailbox server said: 550 5.1.1 no")
	}
	if strings.HasPrefix(rcpt, "busy") {
		return smtperr.New(450, "4.1.1", "<"+rcpt+">: Recipient address rejected: unverified address: the mailbox server said: 450 4.2.0 later")
	}
	return nil
}

// TestVerifierAtRCPT: the verifier is the last RCPT check: not asked about
// a recipient the relay policy or the rcpt-phase rules refused; its refusal
// is the reply, logged with the session, and the recipient is not kept.
func TestVerifierAtRCPT(t *testing.T) {
	v := &fakeVerifier{}
	run := &ruleRunner{rules: map[sdk.Phase]func(*sdk.Request) *pipeline.Decision{
		sdk.PhaseRcpt: func(r *sdk.Request) *pipeline.Decision {
			if strings.HasPrefix(r.Envelope.Rcpt, "ruled@") {
				return &pipeline.Decision{Action: pipeline.Reject}
			}
			return cont()
		},
	}}
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Verifier, d.Pipeline = v, run })
	c := newRaw(t, ts.addr(), 2)
	c.hello()
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<x@elsewhere.test>", "554 5.7.1")
	c.cmd("RCPT TO:<ruled@example.test>", "550")
	c.cmd("RCPT TO:<unknown@example.test>", "550 5.1.1 <unknown@example.test>: Recipient address rejected: undeliverable address: the mailbox server said: 550 5.1.1 no")
	c.cmd("RCPT TO:<bob@example.test>", "250")
	c.cmd("DATA", "354")
	c.cmd(message("v")+".", "250")
	v.mu.Lock()
	asked := strings.Join(v.asked, " ")
	v.mu.Unlock()
	if asked != "unknown@example.test bob@example.test" {
		t.Errorf("verifier asked about %q", asked)
	}
	envs := ts.queued(t)
	if len(envs) != 1 || len(envs[0].Rcpts) != 1 || envs[0].Rcpts[0].Addr != "bob@example.test" {
		t.Fatalf("queued %+v", envs)
	}
	if !strings.Contains(ts.logs.String(), "msg=verify session=") {
		t.Error("the verifier's line lacks the session")
	}
}

// TestVerifierDeferralsCount: a recipient the verifier could not verify
// (450 4.1.1) counts toward max_bad_commands, as Postfix's
// smtpd_hard_error_limit counts its 4xx refusals too. Temporary failures
// are not cached: without the count one connection could send RCPT after
// RCPT and make the gateway open a probe connection to the server behind
// for each, without end (a client with 1,000 RCPTs made 1,000 probes).
func TestVerifierDeferralsCount(t *testing.T) {
	v := &fakeVerifier{}
	cfg := testConfig(t)
	cfg.Limits.MaxBadCommands = 3
	ts := startServer(t, cfg, func(d *Deps) { d.Verifier = v })
	c := newRaw(t, ts.addr(), 2)
	c.hello()
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<busy1@example.test>", "450 4.1.1")
	c.cmd("RCPT TO:<unknown@example.test>", "550 5.1.1")
	c.cmd("RCPT TO:<busy2@example.test>", "450 4.1.1")
	c.cmd("RCPT TO:<busy3@example.test>", "421 4.7.0 mx.example.test Too many errors")
	if !c.closed() {
		t.Fatal("connection left open")
	}
	v.mu.Lock()
	n := len(v.asked)
	v.mu.Unlock()
	if n != 4 {
		t.Errorf("verifier asked %d times, want 4", n)
	}

	// A message accepted starts the count again, as for refusals.
	c = newRaw(t, ts.addr(), 2)
	c.hello()
	c.cmd("MAIL FROM:<a@example.org>", "250")
	c.cmd("RCPT TO:<busy1@example.test>", "450 4.1.1")
	c.cmd("RCPT TO:<busy2@example.test>", "450 4.1.1")
	c.cmd("RCPT TO:<bob@example.test>", "250")
	c.cmd("DATA", "354")
	c.cmd(message("v")+".", "250")
	c.cmd("MAIL FROM:<a@example.org>", "250")
	for i := range 3 {
		c.cmd(fmt.Sprintf("RCPT TO:<busy%d@example.test>", i), "450 4.1.1")
	}
}
