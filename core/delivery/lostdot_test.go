package delivery

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// A next hop that hangs up after the final dot, before its reply, may have
// the message: the recipient is kept and sent again (at least once), and
// the log and queue say the outcome is unknown, not just "connection lost"
// as for a hop gone before the message was whole. Postfix: "lost connection
// ... while sending end of data -- message may be sent more than once".
func TestConnectionLostAfterDot(t *testing.T) {
	for _, tt := range []struct {
		name    string
		dropAt  string // the command line (or ".") the peer hangs up on
		unknown bool
	}{
		{"after the dot", ".", true},
		{"at RCPT", "RCPT TO:<a@d.test>", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			drops := 1
			down := newScriptPeer(t, func(line string) string {
				mu.Lock()
				defer mu.Unlock()
				if line == tt.dropAt && drops > 0 {
					drops--
					return ""
				}
				return basicReplies(lockstepEHLO, line)
			})
			cfg := baseConfig(t)
			cfg.Queue.Retry = []config.Duration{config.Duration(300 * time.Millisecond)}
			cfg.Routes = []config.Route{mkRoute([]string{"*"}, down.addr)}
			w := newWorld(t, cfg)
			id := w.enqueue("u@local.test", []string{"a@d.test"}, localSender, plainBody)
			w.start()
			w.waitFor("the first attempt", func() bool { return w.get(id).Attempts == 1 })
			r := w.get(id).Rcpts[0]
			const unknown = "the outcome is unknown: the hop may have the message"
			if r.Status != queue.RcptPending || strings.Contains(r.LastReply, unknown) != tt.unknown {
				t.Errorf("after the first attempt: %s %q; want pending, saying %q: %v", r.Status, r.LastReply, unknown, tt.unknown)
			}
			if got := logLine(w.logs.String(), "queue_id="+id, "status=deferred", unknown); got != tt.unknown {
				t.Errorf("delivery line saying %q: %v, want %v", unknown, got, tt.unknown)
			}
			w.waitFor("the retry", w.queueEmpty)
			if n := len(down.messages()); n != map[bool]int{true: 2, false: 1}[tt.unknown] {
				t.Errorf("the hop got the message %d times", n)
			}
		})
	}
}
