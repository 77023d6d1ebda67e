package smtpc

import (
	"strings"
	"testing"
)

// The reply to a refused DATA command stands as Data (the verdict for the
// accepted recipients); a broken 2xx there delivers nothing.
func TestSendDataCommandReply(t *testing.T) {
	for _, tt := range []struct{ reply, want string }{
		{"554 5.7.1 no thanks\r\n", "554 5.7.1 no thanks"},
		{"451 4.3.0 later\r\n", "451 4.3.0 later"},
		{"250 2.0.0 sure\r\n", ""},
	} {
		t.Run(tt.reply[:3], func(t *testing.T) {
			c, _ := scripted(t, "220 mx.test\r\n", func(line string) string {
				switch {
				case strings.HasPrefix(line, "EHLO"):
					return "250-mx.test\r\n250 ENHANCEDSTATUSCODES\r\n"
				case line == "DATA":
					return tt.reply
				}
				return "250 2.0.0 ok\r\n"
			})
			if err := c.Greet(); err != nil {
				t.Fatal(err)
			}
			if err := c.Hello("gw.test"); err != nil {
				t.Fatal(err)
			}
			res, err := c.Send("s@y", nil, []Rcpt{{Addr: "a@x"}}, strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if res.Data != nil {
				got = res.Data.String()
			}
			if got != tt.want || res.Delivered(0) {
				t.Errorf("Data %q delivered %v, want %q and not delivered", got, res.Delivered(0), tt.want)
			}
		})
	}
}
