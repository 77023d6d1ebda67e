package delivery

import (
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// RCPT accepted but the DATA command refused: the refusal is the verdict
// for every accepted recipient, permanent for a 5xx (a DSN, as Postfix
// does "in reply to DATA command"), temporary for a 4xx, and in either
// case the server's own words reach the log and the DSN.
func TestDataCommandRefused(t *testing.T) {
	for _, tt := range []struct {
		name, reply string
		pipelining  bool
		want        queue.RcptStatus
	}{
		{"5xx lockstep", "554 5.7.1 rejected by data policy\r\n", false, queue.RcptFailed},
		{"5xx pipelining", "554 5.7.1 rejected by data policy\r\n", true, queue.RcptFailed},
		{"4xx lockstep", "451 4.7.1 greylisted at data\r\n", false, queue.RcptPending},
		{"4xx pipelining", "451 4.7.1 greylisted at data\r\n", true, queue.RcptPending},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ehlo := "250-script.test\r\n250 ENHANCEDSTATUSCODES\r\n"
			if tt.pipelining {
				ehlo = "250-script.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n"
			}
			down := newScriptPeer(t, func(line string) string {
				if line == "DATA" {
					return tt.reply
				}
				return basicReplies(ehlo, line)
			})
			home := newPeer(t)
			cfg := baseConfig(t)
			cfg.Queue.Retry = []config.Duration{config.Duration(3600e9)} // one attempt in this test
			cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, down.addr)}
			w := newWorld(t, cfg)
			id := w.enqueue("u@local.test", []string{"a@d.test", "b@d.test"}, localSender, plainBody)
			w.start()
			text := strings.TrimSpace(tt.reply)
			if tt.want == queue.RcptFailed {
				w.waitFor("the DSN", func() bool { return len(home.messages()) == 1 && w.queueEmpty() })
				parseDSN(t, home.messages()[0]).want(t, "Status: 5.7.1", "Diagnostic-Code: smtp; "+text,
					"Final-Recipient: rfc822; a@d.test", "Final-Recipient: rfc822; b@d.test")
				return
			}
			w.waitFor("the first attempt", func() bool { return w.get(id).Attempts == 1 })
			for _, r := range w.get(id).Rcpts {
				if r.Status != tt.want || r.LastReply != text {
					t.Errorf("%s: %s %q, want %s %q", r.Addr, r.Status, r.LastReply, tt.want, text)
				}
			}
		})
	}
}
