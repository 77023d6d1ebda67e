package delivery

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/metrics"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// TestAttemptsCounted: one transaction with a 250, a 451 and a 550 counts
// one attempt of each status and one failure DSN; the DSN's own delivery
// is a second sent attempt and a second timed transaction.
func TestAttemptsCounted(t *testing.T) {
	m := metrics.New()
	metrics.Enable(m)
	t.Cleanup(func() { metrics.Enable(nil) })
	w, _, _ := mixedRepliesWorld(t)
	w.enqueue("u@local.test", []string{"ok@d.test", "later@d.test", "gone@d.test"}, localSender, plainBody)
	w.start()
	want := []string{
		`portcullis_delivery_attempts_total{status="sent"} 2`,
		`portcullis_delivery_attempts_total{status="deferred"} 1`,
		`portcullis_delivery_attempts_total{status="bounced"} 1`,
		`portcullis_dsns_sent_total{action="failed"} 1`,
		`portcullis_dsns_sent_total{action="delayed"} 0`,
		`portcullis_delivery_duration_seconds_count 2`,
	}
	waitMetrics(t, w, m, want)
}

// TestExpiredAndWithheldCounted: recipients given up at queue.max_age are
// counted, and a failure DSN owed but not sent counts by why: a null
// sender (a DSN never gets a DSN) or the bounce policy (an outside sender
// under bounce: local).
func TestExpiredAndWithheldCounted(t *testing.T) {
	m := metrics.New()
	metrics.Enable(m)
	t.Cleanup(func() { metrics.Enable(nil) })
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, "127.0.0.1:1")} // nothing listens: deferred
	w := newWorld(t, cfg)
	old := func(e *queue.Envelope) { e.Received = time.Now().Add(-2 * time.Hour) } // max_age is 1h
	w.enqueue("", []string{"a@d.test"}, localSender, plainBody, old)
	w.enqueue("u@outside.test", []string{"b@d.test", "c@d.test"}, outsideSender, plainBody, old)
	w.start()
	want := []string{
		`portcullis_recipients_expired_total 3`,
		`portcullis_dsns_withheld_total{reason="null_sender"} 1`,
		`portcullis_dsns_withheld_total{reason="policy"} 1`,
		`portcullis_dsns_sent_total{action="failed"} 0`,
	}
	waitMetrics(t, w, m, want)
}

// waitMetrics waits until a scrape of m has every line of want.
func waitMetrics(t *testing.T, w *world, m *metrics.Metrics, want []string) {
	t.Helper()
	var body string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last scrape:\n%s", body)
		}
	})
	w.waitFor("the counts", func() bool {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body = rec.Body.String()
		for _, s := range want {
			if !strings.Contains(body, s+"\n") {
				return false
			}
		}
		return true
	})
}
