package delivery

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
)

// RFC 5321 4.5.3.1.10: recipients refused as too many for one transaction
// go in another one at once, not at the next retry. A hop taking 2
// recipients per transaction gets 5 in one attempt: 3 transactions, each
// recipient accepted once.
func TestTooManyRecipientsNextTransaction(t *testing.T) {
	for _, ehlo := range []string{pipeliningEHLO, lockstepEHLO} {
		name := map[string]string{pipeliningEHLO: "pipelining", lockstepEHLO: "lockstep"}[ehlo]
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0                  // recipients accepted in this transaction
			var accepted [][]string // per transaction
			p := newScriptPeer(t, func(line string) string {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case strings.HasPrefix(line, "MAIL"):
					n = 0
					accepted = append(accepted, nil)
				case strings.HasPrefix(line, "RCPT"):
					if n == 2 {
						return "452 4.5.3 Error: too many recipients\r\n"
					}
					n++
					accepted[len(accepted)-1] = append(accepted[len(accepted)-1], line)
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
			id := w.enqueue("u@local.test", rcpts, localSender, plainBody)
			w.start()
			w.waitFor("every recipient delivered", w.queueEmpty)
			mu.Lock()
			defer mu.Unlock()
			if len(accepted) != 3 || len(p.messages()) != 3 {
				t.Errorf("%d transactions, %d messages; want 3 (2+2+1 recipients): %q", len(accepted), len(p.messages()), accepted)
			}
			seen := map[string]int{}
			for _, tx := range accepted {
				for _, l := range tx {
					seen[l]++
				}
			}
			for _, r := range rcpts {
				if seen["RCPT TO:<"+r+">"] != 1 {
					t.Errorf("%s accepted %d times, want once", r, seen["RCPT TO:<"+r+">"])
				}
			}
			if w.logs.Count("queue_id="+id) < 5 || w.logs.Count("status=sent") != 5 || w.logs.Count("attempts=1") != 5 {
				t.Errorf("want 5 recipients sent at the first attempt:\n%s", w.logs.String())
			}
			ehlos := 0
			for _, c := range p.commands() {
				if strings.HasPrefix(c, "EHLO") {
					ehlos++
				}
			}
			if n := ehlos; n != 1 {
				t.Errorf("%d connections, want 1 (the next transactions on the same one)", n)
			}
		})
	}
}
