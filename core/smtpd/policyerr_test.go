package smtpd

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/metrics"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/smtperr"
)

// relayPolicy is the real relay policy, as core/daemon wires it in.
type relayPolicy struct{ p *policy.Policy }

func (r relayPolicy) Trusted(ip netip.Addr) bool { return r.p.Trusted(ip) }
func (r relayPolicy) CheckMail(c Client, from string) error {
	return r.p.CheckMail(policy.Client(c), from)
}
func (r relayPolicy) CheckRcpt(c Client, from, rcpt string) error {
	return r.p.CheckRcpt(policy.Client(c), from, rcpt)
}

func startWithRelayPolicy(t *testing.T) *testServer {
	t.Helper()
	cfg := testConfig(t)
	p, err := policy.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, cfg, func(d *Deps) { d.Policy = relayPolicy{p} })
}

// TestBadAddressNotInternal: a client's malformed address is its own
// mistake, refused at info with the parser's reason on the refused line,
// never logged as an internal error (a WARN any client could provoke).
func TestBadAddressNotInternal(t *testing.T) {
	ts := startWithRelayPolicy(t)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<x@-bad.test>", "553 5.1.7 <x@-bad.test>: Sender address rejected")
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<bob@-bad.test>", "553 5.1.3 <bob@-bad.test>: Recipient address rejected")
	r.cmd("QUIT", "221")
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), "msg=disconnect") })
	logs := ts.logs.String()
	if strings.Contains(logs, "internal error") || strings.Contains(logs, "level=WARN") {
		t.Errorf("a client's bad address logged as a warning:\n%s", logs)
	}
	for _, want := range []string{
		`phase=mail reply="553 5.1.7 <x@-bad.test>: Sender address rejected: bad address syntax" code=553 reason="invalid domain \"-bad.test\"" from=x@-bad.test`,
		`phase=rcpt reply="553 5.1.3 <bob@-bad.test>: Recipient address rejected: bad address syntax" code=553 from=a@example.org reason="invalid domain \"-bad.test\"" rcpt=bob@-bad.test`,
	} {
		if line := logLine(logs, want); !strings.Contains(line, "level=INFO msg=refused ") {
			t.Errorf("no refused line at info with %s in:\n%s", want, logs)
		}
	}
}

// TestInternalErrorStillWarns: a failure of the gateway behind a reply is
// still logged as one.
func TestInternalErrorStillWarns(t *testing.T) {
	ts := startServer(t, testConfig(t), func(d *Deps) {
		d.Policy = failingPolicy{&testPolicy{local: d.Config.Relay.Domains}}
	})
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "451 4.3.0")
	waitFor(t, func() bool {
		return strings.Contains(ts.logs.String(), `level=WARN msg="internal error"`) &&
			strings.Contains(ts.logs.String(), `err="recipients store unavailable"`)
	})
}

type failingPolicy struct{ *testPolicy }

func (failingPolicy) CheckMail(Client, string) error {
	return smtperr.Wrap(errors.New("recipients store unavailable"), 451, "4.3.0", "Temporary local problem, try again later")
}

// logLine is the first line of logs that holds s, or "".
func logLine(logs, s string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// TestBadSenderCountedAsMail: the 553 5.1.7 the guard gives a sender with
// an '@' in its domain is a mail-phase refusal like the policy's for any
// other bad sender: counted under phase="mail" and logged with phase=,
// code= and the sender as written (printable).
func TestBadSenderCountedAsMail(t *testing.T) {
	m := metrics.New()
	metrics.Enable(m)
	t.Cleanup(func() { metrics.Enable(nil) })
	ts := startWithRelayPolicy(t)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@b@example.org> SIZE=10", "553 5.1.7")
	r.cmd(`MAIL FROM:<"x y"@b@example.org>`, "553 5.1.7")
	r.cmd("MAIL FROM:<x@-bad.test>", "553 5.1.7")
	waitFor(t, func() bool {
		return strings.Contains(scrapeMetrics(m), `portcullis_smtp_replies_refused_total{class="5xx",phase="mail"} 3`+"\n")
	})
	if body := scrapeMetrics(m); !strings.Contains(body, `portcullis_smtp_replies_refused_total{class="5xx",phase="other"} 0`) {
		t.Errorf("counted outside the mail phase:\n%s", body)
	}
	logs := ts.logs.String()
	for _, want := range []string{
		`phase=mail reply="553 5.1.7 Sender address rejected: bad address syntax" code=553 from=a@b@example.org`,
		`phase=mail reply="553 5.1.7 Sender address rejected: bad address syntax" code=553 from="\"x y\"@b@example.org"`,
	} {
		if line := logLine(logs, want); !strings.Contains(line, "level=INFO msg=refused ") {
			t.Errorf("no refused line with %s in:\n%s", want, logs)
		}
	}
}
