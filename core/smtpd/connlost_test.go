package smtpd

import (
	"net"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/metrics"
)

// TestConnectionResetNotRefusal: a client that resets the connection
// (SO_LINGER 0) after MAIL makes go-smtp "answer" 421 4.4.0 to a dead
// socket. That is a connection lost, logged so with the command it came
// after, not a refusal: no refused line, no refused count.
func TestConnectionResetNotRefusal(t *testing.T) {
	m := metrics.New()
	metrics.Enable(m)
	t.Cleanup(func() { metrics.Enable(nil) })
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	if err := r.c.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	r.c.Close() // RST
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), "msg=disconnect") })
	logs := ts.logs.String()
	if !strings.Contains(logs, `level=INFO msg="connection lost" session=`) ||
		!strings.Contains(logs, `command=MAIL phase=mail in_transaction=true err=`) {
		t.Errorf("no connection lost line:\n%s", logs)
	}
	if strings.Contains(logs, "msg=refused") || strings.Contains(logs, "4.4.0") {
		t.Errorf("a reset logged as a refusal:\n%s", logs)
	}
	if body := scrapeMetrics(m); !strings.Contains(body, `portcullis_smtp_replies_refused_total{class="4xx",phase="mail"} 0`) {
		t.Errorf("a reset counted as a refusal:\n%s", body)
	}
}

// TestConnectionResetInData: a client that resets the connection halfway
// through its message is lost, not refused: it was logged as a WARN
// "internal error", a refusal with 451 4.3.0, and counted in the refusal
// metric. Nothing is queued.
func TestConnectionResetInData(t *testing.T) {
	m := metrics.New()
	metrics.Enable(m)
	t.Cleanup(func() { metrics.Enable(nil) })
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<bob@example.test>", "250")
	r.cmd("DATA", "354")
	r.send("Subject: cut short\r\n\r\nhalf a line") // read or not, the next read fails with the reset
	if err := r.c.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	r.c.Close() // RST
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), "msg=disconnect") })
	logs := ts.logs.String()
	if !strings.Contains(logs, `command=DATA phase=data in_transaction=true err=`) {
		t.Errorf("no connection lost line for DATA:\n%s", logs)
	}
	if strings.Contains(logs, "msg=refused") || strings.Contains(logs, "internal error") {
		t.Errorf("a reset in DATA logged as a refusal:\n%s", logs)
	}
	if body := scrapeMetrics(m); strings.Contains(body, `portcullis_smtp_replies_refused_total{class="4xx",phase="data"} 1`) {
		t.Errorf("a reset in DATA counted as a refusal:\n%s", body)
	}
	if n := len(ts.queued(t)); n != 0 {
		t.Errorf("%d messages queued", n)
	}
}
