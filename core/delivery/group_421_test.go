package delivery

import (
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// pipeliningEHLO offers PIPELINING: MAIL, the RCPTs and DATA go in one write.
const pipeliningEHLO = "250-script.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n"

// A server that answers a pipelined command with 421 and closes (RFC 5321
// 3.8) leaves the 421 as the recorded reply, a deferral, not the EOF
// that follows it. Postfix: "host said: 421 4.7.0 too fast (in reply to
// MAIL FROM command)".
func TestPipelined421KeepsServerReply(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply func(line string) string // "" after a 421: close
		want  map[string]string        // recipient -> LastReply
	}{
		{
			name: "MAIL",
			reply: func(line string) string {
				if strings.HasPrefix(line, "MAIL") {
					return "421 4.7.0 too fast\r\n"
				}
				return ""
			},
			want: map[string]string{"a@d.test": "421 4.7.0 too fast", "b@d.test": "421 4.7.0 too fast"},
		},
		{
			name: "second RCPT",
			reply: func(line string) string {
				switch {
				case strings.HasPrefix(line, "RCPT TO:<b@"):
					return "421 4.7.0 too many connections\r\n"
				case strings.HasPrefix(line, "MAIL"), strings.HasPrefix(line, "RCPT"):
					return "250 2.1.0 ok\r\n"
				}
				return ""
			},
			// a@ was accepted, but the message never went: the server's 421 is why.
			want: map[string]string{"a@d.test": "421 4.7.0 too many connections", "b@d.test": "421 4.7.0 too many connections"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newScriptPeer(t, func(line string) string {
				if strings.HasPrefix(line, "EHLO") {
					return pipeliningEHLO
				}
				return tc.reply(line)
			})
			cfg := baseConfig(t)
			cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)} // one attempt
			cfg.Routes = []config.Route{mkRoute([]string{"*"}, p.addr)}
			w := newWorld(t, cfg)
			id := w.enqueue("u@local.test", []string{"a@d.test", "b@d.test"}, localSender, plainBody)
			w.start()
			w.waitFor("one attempt", func() bool { return w.get(id).Attempts >= 1 })
			for _, r := range w.get(id).Rcpts {
				if r.Status != queue.RcptPending || r.LastReply != tc.want[r.Addr] {
					t.Errorf("%s: %s %q, want pending %q", r.Addr, r.Status, r.LastReply, tc.want[r.Addr])
				}
			}
			if !strings.Contains(w.logs.String(), `reply="`+tc.want["b@d.test"]+`"`) {
				t.Errorf("the log lacks the server's reply %q", tc.want["b@d.test"])
			}
			if strings.Contains(w.logs.String(), "connection lost") {
				t.Error("logged as a lost connection")
			}
			if cmds := p.commands(); !strings.HasPrefix(strings.Join(cmds, "|"), "EHLO gw.test|MAIL FROM:<u@local.test>") {
				t.Errorf("commands %q", cmds)
			}
		})
	}
}
