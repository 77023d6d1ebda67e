package smtpd

import (
	"context"
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
