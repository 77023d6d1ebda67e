package smtpd

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/metrics"
)

// TestConnectRefusalsCounted: refusals before the session count by reason
// and as connect-phase replies; a session is in progress until it ends;
// a refused RCPT and an accepted message count once each, and so do
// go-smtp's own refusals (out of sequence, bad syntax), which no code path
// of ours decided.
func TestConnectRefusalsCounted(t *testing.T) {
	m := metrics.New()
	metrics.Enable(m)
	t.Cleanup(func() { metrics.Enable(nil) })
	cfg := testConfig(t)
	cfg.Limits.MaxConnectionsPerIP = 1
	cfg.Limits.PregreetDelay = config.Duration(200 * time.Millisecond)
	ts := startServer(t, cfg, nil)

	a := newRaw(t, ts.addr(), 2)
	a.expect("220")
	newRaw(t, ts.addr(), 2).expect("421 4.7.0")
	eager := newRaw(t, ts.addr(), 3)
	eager.send("EHLO eager.example\r\n")
	eager.expect("554 5.5.1")
	a.cmd("XYZZY", "500 5.5.2")
	a.cmd("EHLO c.example.org", "250")
	a.cmd("MAIL FROM:<s@example.org>", "250")
	a.cmd("RCPT TO:<x@elsewhere.example>", "5")
	a.cmd("RCPT TO:<b@example.test>", "250")
	a.cmd("DATA", "354")
	a.cmd(message("counted")+".", "250")
	// go-smtp's own answers count too, under the command they answer.
	a.cmd("RCPT TO:<b@example.test>", "503") // no MAIL yet
	a.cmd("MAIL FROM:<bad", "501")
	// A reply is counted just after it is written: the client may read it first.
	waitFor(t, func() bool {
		return strings.Contains(scrapeMetrics(m), `portcullis_smtp_replies_refused_total{class="5xx",phase="mail"} 1`+"\n")
	})
	body := scrapeMetrics(m)
	for _, want := range []string{
		`portcullis_smtp_connections_total{listener="mx"} 3`,
		`portcullis_smtp_connections_refused_total{reason="limit"} 1`,
		`portcullis_smtp_connections_refused_total{reason="pregreet"} 1`,
		`portcullis_smtp_connections_refused_total{reason="rule"} 0`,
		`portcullis_smtp_replies_refused_total{class="4xx",phase="connect"} 1`,
		`portcullis_smtp_replies_refused_total{class="5xx",phase="connect"} 1`,
		`portcullis_smtp_replies_refused_total{class="5xx",phase="rcpt"} 2`,
		`portcullis_smtp_replies_refused_total{class="5xx",phase="mail"} 1`,
		`portcullis_smtp_replies_refused_total{class="5xx",phase="other"} 1`,
		`portcullis_smtp_messages_accepted_total{listener="mx"} 1`,
		`portcullis_message_decisions_total{action="accept"} 1`,
		"portcullis_smtp_sessions_in_progress 1",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("no %q in the scrape", want)
		}
	}
	// Their log lines say what the client was told.
	logs := ts.logs.String()
	for _, want := range []string{`reason="too many connections from ip" reply="421 4.7.0 `, `reason=pregreet reply="554 5.5.1 `} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %q in the log", want)
		}
	}
	a.cmd("QUIT", "221")
	waitFor(t, func() bool {
		return strings.Contains(scrapeMetrics(m), "portcullis_smtp_sessions_in_progress 0\n")
	})
}

func scrapeMetrics(m *metrics.Metrics) string {
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
