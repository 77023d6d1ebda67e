package smtpd

import (
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/rules"
)

// TestDecisionLineReplyAsSent: the decision line's reply= is the reply as
// it went on the wire, as the refused line's is: a tempfail before the
// greeting as its 421, a reply made ASCII for a client without SMTPUTF8,
// and a rule without a reply with its default.
func TestDecisionLineReplyAsSent(t *testing.T) {
	set, err := rules.Parse("r.yaml", []byte(`
rules:
  - {name: busy, phase: connect, when: 'conn.ip == "127.0.0.3"', action: tempfail, reply: '451 4.3.0 Busy here'}
  - {name: accented, phase: rcpt, when: 'rcpt == "jose@example.test"', action: reject, reply: '550 5.1.1 José is not here'}
  - {name: plain, phase: rcpt, when: 'rcpt == "ann@example.test"', action: reject}
`))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, testConfig(t), func(d *Deps) {
		eng, err := pipeline.New(set, nil, d.Logger)
		if err != nil {
			t.Fatal(err)
		}
		d.Pipeline = eng
	})

	newRaw(t, ts.addr(), 3).expect("421 4.3.0 Busy here")
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<jose@example.test>", "550 5.1.1 Jos? is not here")
	r.cmd("RCPT TO:<ann@example.test>", "550 5.7.1 Recipient rejected by policy")
	r.cmd("QUIT", "221")
	waitFor(t, func() bool { return strings.Count(ts.logs.String(), "msg=disconnect") == 2 })

	logs := ts.logs.String()
	for _, c := range []struct{ rule, reply string }{
		{"busy", "421 4.3.0 Busy here"},
		{"accented", "550 5.1.1 Jos? is not here"},
		{"plain", "550 5.7.1 Recipient rejected by policy"},
	} {
		decision := logLine(logs, "rule="+c.rule)
		if !strings.Contains(decision, "msg=decision") || !strings.Contains(decision, `reply="`+c.reply+`"`) {
			t.Errorf("decision line of %s: %s\nwant reply=%q", c.rule, decision, c.reply)
		}
		if !strings.Contains(logs, `msg=refused`) || !strings.Contains(logs, `reply="`+c.reply+`"`) {
			t.Errorf("no refused line with reply %q", c.reply)
		}
	}
}
