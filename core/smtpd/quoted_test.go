package smtpd

import (
	"strings"
	"testing"
)

// TestQuotedAddressShown: go-smtp hands a quoted local part unquoted
// ("john smith"@x as `john smith@x`, another address to read); replies
// and log lines name it in its envelope form (RFC 5321 4.1.2), as the
// next hop gets it.
func TestQuotedAddressShown(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 1) // trusted: the recipient may be anywhere
	r.hello()
	r.cmd(`MAIL FROM:<"john smith"@example.org>`, `250 2.1.0 Sender <"john smith"@example.org> OK`)
	r.cmd(`RCPT TO:<"a b"@example.test>`, `250 2.1.5 Recipient <"a b"@example.test> OK`)
	r.cmd("DATA", "354")
	r.cmd(message("quoted")+".", "250 2.0.0")
	r.cmd("QUIT", "221")
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), "msg=disconnect") })
	logs := ts.logs.String()
	for _, want := range []string{
		`msg=mail `, `from="\"john smith\"@example.org"`,
		`msg=rcpt `, `rcpt="\"a b\"@example.test" result=accepted`,
		`msg=queued `,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	if line := logLine(logs, "msg=queued "); !strings.Contains(line, `from="\"john smith\"@example.org"`) {
		t.Errorf("queued line: %s", line)
	}
	if strings.Contains(logs, `from="john smith@example.org"`) {
		t.Errorf("sender logged unquoted:\n%s", logs)
	}
}
