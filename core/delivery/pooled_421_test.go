package delivery

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
)

// Exim 4.96 with smtp_accept_max_per_connection = 2 answers the third MAIL
// of a session 421 and, against RFC 5321 3.8, does not close: the
// pipelined RCPT and DATA get 503s, and the session stays until its
// command timeout. Its transcript:
//
//	MAIL FROM:<a@b.test>      421 too many messages in this connection
//	RCPT TO:<x@nobit.test>    503 sender not yet given
//	DATA                      503-All RCPT commands were rejected with this error:
//	                          503-503 sender not yet given
//	                          503 Valid RCPT command must precede DATA
//
// A message offered on such a pooled session was deferred to the next
// retry ("421 too many messages in this connection" dsn=4.0.0
// status=deferred) while a new session would have taken it at once, as
// one is taken when a pooled session was closed meanwhile. The peer here
// takes one message per session, then answers as Exim did.
func TestPooledSession421AtMailTriesANewOne(t *testing.T) {
	for _, ehlo := range []string{pipeliningEHLO, lockstepEHLO} {
		name := map[string]string{pipeliningEHLO: "pipelining", lockstepEHLO: "lockstep"}[ehlo]
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			taken, refused := 0, false // in the current session (one at a time: one worker)
			sessions := 0
			p := newScriptPeer(t, func(line string) string {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case strings.HasPrefix(line, "EHLO"):
					taken, refused = 0, false
					sessions++
				case strings.HasPrefix(line, "MAIL"):
					refused = taken == 1
					if refused {
						return "421 too many messages in this connection\r\n"
					}
				case strings.HasPrefix(line, "RCPT") && refused:
					return "503 sender not yet given\r\n"
				case line == "DATA" && refused:
					return "503-All RCPT commands were rejected with this error:\r\n" +
						"503-503 sender not yet given\r\n503 Valid RCPT command must precede DATA\r\n"
				case line == ".":
					taken++
				}
				return basicReplies(ehlo, line)
			})
			cfg := baseConfig(t)
			cfg.Queue.Workers = 1
			cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)} // a retry would not come in this test
			cfg.Routes = []config.Route{mkRoute([]string{"*"}, p.addr)}
			w := newWorld(t, cfg)
			w.start()
			w.enqueue("u@local.test", []string{"a@d.test"}, localSender, plainBody)
			w.waitFor("the first message", func() bool { return len(p.messages()) == 1 && w.queueEmpty() })
			w.enqueue("u@local.test", []string{"b@d.test"}, localSender, plainBody)
			w.waitFor("the second message settled", w.queueEmpty)
			if n := len(p.messages()); n != 2 {
				t.Errorf("the next hop got %d messages, want 2", n)
			}
			mu.Lock()
			defer mu.Unlock()
			if sessions != 2 {
				t.Errorf("%d sessions, want 2 (the pooled one, then a new one)", sessions)
			}
			if w.logs.Count("status=sent") != 2 || w.logs.Count("attempts=1") != 2 {
				t.Errorf("want both messages sent at their first attempt:\n%s", w.logs.String())
			}
		})
	}
}
