package delivery

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// Exim 4.96 with recipients_max = 5 and recipients_max_reject = true
// refuses the surplus recipients and then the whole message at DATA
// (Exim's spec: "552 errors to the surplus RCPT commands, and a 554 error
// to the eventual DATA command"). Its transcript, 7 recipients:
//
//	RCPT TO:<1@nobit.test>  250 Accepted   (... to 5@)
//	RCPT TO:<6@nobit.test>  552 too many recipients
//	RCPT TO:<7@nobit.test>  552 too many recipients
//	DATA                    554 Too many recipients
//
// Portcullis bounced the five recipients Exim had accepted ("554 Too many
// recipients", dsn=5.0.0 status=bounced) although each was deliverable in
// a transaction of at most five. The refusal of DATA is about the size of
// the transaction: the recipients go again at once, at most as many per
// transaction as the hop took, and every one is delivered.
// eximRcptMax scripts Exim's recipients_max = limit with
// recipients_max_reject: the recipients past the limit get 552, and DATA
// then 554. reply answers the lines it decides (ok), and counts the
// recipients it lets through; MAIL starts a new count.
type eximRcptMax struct {
	limit, n int
	over     bool // a recipient was refused as surplus in this transaction
}

func (e *eximRcptMax) reply(line string) (string, bool) {
	switch {
	case strings.HasPrefix(line, "MAIL"):
		e.n, e.over = 0, false
	case strings.HasPrefix(line, "RCPT"):
		if e.n == e.limit {
			e.over = true
			return "552 too many recipients\r\n", true
		}
		e.n++
	case line == "DATA" && e.over:
		return "554 Too many recipients\r\n", true
	}
	return "", false
}

func TestTooManyRecipientsRefusedAtData(t *testing.T) {
	for _, ehlo := range []string{pipeliningEHLO, lockstepEHLO} {
		name := map[string]string{pipeliningEHLO: "pipelining", lockstepEHLO: "lockstep"}[ehlo]
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			exim := eximRcptMax{limit: 2}
			var delivered []string // RCPT lines of the transactions that delivered
			var pending []string
			p := newScriptPeer(t, func(line string) string {
				mu.Lock()
				defer mu.Unlock()
				if r, ok := exim.reply(line); ok {
					return r
				}
				switch {
				case strings.HasPrefix(line, "MAIL"):
					pending = nil
				case strings.HasPrefix(line, "RCPT"):
					pending = append(pending, line)
				case line == ".":
					delivered = append(delivered, pending...)
				}
				return basicReplies(ehlo, line)
			})
			cfg := baseConfig(t)
			cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)} // a retry would not come in this test
			cfg.Routes = []config.Route{mkRoute([]string{"*"}, p.addr)}
			w := newWorld(t, cfg)
			var rcpts []string
			for i := range 5 {
				rcpts = append(rcpts, fmt.Sprintf("r%d@d.test", i+1))
			}
			w.enqueue("u@local.test", rcpts, localSender, plainBody)
			w.start()
			w.waitFor("every recipient settled", w.queueEmpty)
			mu.Lock()
			defer mu.Unlock()
			seen := map[string]int{}
			for _, l := range delivered {
				seen[l]++
			}
			for _, r := range rcpts {
				if seen["RCPT TO:<"+r+">"] != 1 {
					t.Errorf("%s delivered %d times, want once", r, seen["RCPT TO:<"+r+">"])
				}
			}
			if w.logs.Count("status=sent") != 5 || w.logs.Count("status=bounced") != 0 || w.logs.Count("attempts=1") != 5 {
				t.Errorf("want 5 recipients sent at the first attempt, none bounced:\n%s", w.logs.String())
			}
		})
	}
}

// A recipient the hop refused for good at RCPT in the transaction it then
// refused at DATA is not sent again in the smaller ones: its 550 was the
// hop's verdict on it, not on the transaction's size. It was offered again
// (a second "RCPT TO:<r1@d.test>" for a mailbox the hop had said does not
// exist), and when a smaller transaction then failed for a moment its 550
// became that deferral.
func TestTooManyRecipientsRefusedAtDataKeepsRefusals(t *testing.T) {
	var mu sync.Mutex
	exim := eximRcptMax{limit: 2}
	p := newScriptPeer(t, func(line string) string {
		mu.Lock()
		defer mu.Unlock()
		if line == "RCPT TO:<r1@d.test>" {
			return "550 5.1.1 no such user\r\n"
		}
		if r, ok := exim.reply(line); ok {
			return r
		}
		return basicReplies(pipeliningEHLO, line)
	})
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)} // a retry would not come in this test
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, p.addr)}
	w := newWorld(t, cfg)
	w.enqueue("u@local.test", []string{"r1@d.test", "r2@d.test", "r3@d.test", "r4@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("every recipient settled, and the DSN sent", w.queueEmpty)
	if got := slices.Index(p.commands(), "RCPT TO:<r1@d.test>"); got < 0 || slices.Contains(p.commands()[got+1:], "RCPT TO:<r1@d.test>") {
		t.Errorf("r1 offered other than once:\n%s", strings.Join(p.commands(), "\n"))
	}
	if w.logs.Count("status=sent") != 4 || w.logs.Count("rcpt=r1@d.test") != 1 || !strings.Contains(w.logs.String(), "reply=\"550 5.1.1 no such user\" dsn=5.1.1 status=bounced") {
		t.Errorf("want r1 bounced with its 550, r2, r3, r4 and the DSN sent:\n%s", w.logs.String())
	}
}

// When the smaller transactions cannot all be made (the hop takes one
// MAIL per connection, as Exim with smtp_accept_max_per_connection = 1:
// "421" to the next MAIL), a recipient the hop took in the refused
// transaction and that no smaller one reached must not keep DATA's 554:
// the transaction was refused for its size, not that recipient, and it
// bounced (status=bounced, "554 Too many recipients") though deliverable.
// Here r1 is greylisted (450), r2 and r3 are taken, r4 refused as too
// many; the first smaller transaction (r1, r2) gets the 421, so r3 is
// never sent again. It waits for the next attempt, as the others do.
func TestTooManyRecipientsRefusedAtDataNotSentAgainWaits(t *testing.T) {
	var mu sync.Mutex
	mails := 0
	exim := eximRcptMax{limit: 2}
	p := newScriptPeer(t, func(line string) string {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case strings.HasPrefix(line, "EHLO"):
			mails = 0
		case strings.HasPrefix(line, "MAIL"):
			if mails++; mails > 1 {
				return "421 4.3.2 too many messages in this connection\r\n"
			}
		case mails > 1 && (strings.HasPrefix(line, "RCPT") || line == "DATA"):
			return "503 sender not yet given\r\n"
		case line == "RCPT TO:<r1@d.test>":
			return "450 4.7.1 greylisted, try again later\r\n"
		}
		if r, ok := exim.reply(line); ok {
			return r
		}
		return basicReplies(pipeliningEHLO, line)
	})
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)} // a retry would not come in this test
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, p.addr)}
	w := newWorld(t, cfg)
	rcpts := []string{"r1@d.test", "r2@d.test", "r3@d.test", "r4@d.test"}
	id := w.enqueue("u@local.test", rcpts, localSender, plainBody)
	w.start()
	w.waitFor("every recipient's outcome logged", func() bool {
		return w.logs.Count("status=bounced")+w.logs.Count("status=deferred") == 4
	})
	if w.logs.Count("status=bounced") != 0 || w.logs.Count("status=deferred") != 4 {
		t.Errorf("want every recipient deferred, none bounced:\n%s", w.logs.String())
	}
	for _, r := range w.get(id).Rcpts {
		if r.Status != queue.RcptPending {
			t.Errorf("%s: status %v, want pending", r.Addr, r.Status)
		}
	}
}
