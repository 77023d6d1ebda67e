package smtpd

import (
	"strings"
	"testing"
	"time"
)

// TestReplyWireSafe: a reply that holds client bytes (here the test
// policy's echo of the address, made as the relay policy made it before
// its echo was made safe) goes on the wire printable and within one
// 512-octet line (RFC 5321 4.2, 4.5.3.1.5), whatever code path built it,
// and the refusal's log line shows it as sent.
func TestReplyWireSafe(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")

	r.send("RCPT TO:<x@\x1b[2J.elsewhere.invalid\x07>\r\n")
	const want = "554 5.7.1 <x@?[2J.elsewhere.invalid?>: Relay access denied"
	if got := r.reply(); got != want {
		t.Errorf("reply %q, want %q", got, want)
	}
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), `reply="`+want+`"`) })

	r.send("RCPT TO:<" + strings.Repeat("a", 2000) + "@elsewhere.invalid>\r\n")
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if len(line) > 512 || !strings.HasPrefix(line, "554 5.7.1 <aaa") || !strings.HasSuffix(line, "\r\n") {
		t.Errorf("long reply: %d octets, %.40q...", len(line), line)
	}
	sent := strings.TrimRight(line, "\r\n")
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), `reply="`+sent+`"`) })
	r.cmd("NOOP", "250")
	r.cmd("RSET", "250")

	// go-smtp's own reply echoes the address; under SMTPUTF8 it may hold
	// a right-to-left override, which only the net at the guard's write
	// takes out (the policy's echo never sees an accepted address).
	r.cmd("MAIL FROM:<a@example.org> SMTPUTF8", "250")
	r.cmd("RCPT TO:<a\u202eb@example.test>", "250 2.1.5 Recipient <a?b@example.test> OK")
}

func TestWireSafe(t *testing.T) {
	long := "550 5.7.1 " + strings.Repeat("é", 400) + "\r\n"
	for _, c := range []struct{ name, in, want string }{
		{"clean", "250 2.0.0 OK\r\n", "250 2.0.0 OK\r\n"},
		{"two lines", "250-PIPELINING\r\n250-STARTTLS\r\n", "250-PIPELINING\r\n250-STARTTLS\r\n"},
		{"tab kept", "550 5.7.1 a\tb\r\n", "550 5.7.1 a\tb\r\n"},
		{"controls", "550 5.7.1 a\x1bb\x07c\x00\r\n", "550 5.7.1 a?b?c?\r\n"},
		{"bare LF", "550 5.7.1 a\nb\r\n", "550 5.7.1 a?b\r\n"},
		{"invalid utf-8", "550 5.7.1 \xffx\r\n", "550 5.7.1 ?x\r\n"},
		{"utf-8 kept", "550 5.7.1 jürgen\r\n", "550 5.7.1 jürgen\r\n"},
		{"long", long, long[:510] + "\r\n"},
		{"long, odd", "550 5.7.1 x" + long[10:], "550 5.7.1 x" + long[10:508] + "\r\n"}, // at a character boundary
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := string(wireSafe([]byte(c.in))); got != c.want {
				t.Errorf("wireSafe(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
		})
	}
}
