package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestNilSafe: every method of a nil set is a no-op (the state of every
// package under test and of commands other than run).
func TestNilSafe(t *testing.T) {
	var m *Metrics
	m.Connection("smtp")
	m.SessionStarted()
	m.SessionEnded()
	m.ConnRefused(RefusedLimit)
	m.Accepted("smtp", 10)
	m.Refused("rcpt", 550)
	m.Decision("accept")
	m.StageCall("dnsbl", "pass", time.Millisecond)
	m.PluginRestart("dnsbl")
	m.Delivery(Sent)
	m.DeliveryTook(time.Second)
	m.DSN("failed")
	m.Verification("deliverable", true)
	m.SetQueueLen(func() int { return 1 })
	if Active() != nil {
		t.Fatal("Active() is not nil before Enable")
	}
}

func TestCounters(t *testing.T) {
	m := New()
	tests := []struct {
		name string
		do   func()
		want string // the series that must read 1 afterwards
	}{
		{"connection", func() { m.Connection("smtp") }, `portcullis_smtp_connections_total{listener="smtp"}`},
		{"refused limit", func() { m.ConnRefused(RefusedLimit) }, `portcullis_smtp_connections_refused_total{reason="limit"}`},
		{"refused rule", func() { m.ConnRefused(RefusedRule) }, `portcullis_smtp_connections_refused_total{reason="rule"}`},
		{"accepted", func() { m.Accepted("submission", 1) }, `portcullis_smtp_messages_accepted_total{listener="submission"}`},
		{"rcpt 5xx", func() { m.Refused("rcpt", 550) }, `portcullis_smtp_replies_refused_total{class="5xx",phase="rcpt"}`},
		{"data 4xx", func() { m.Refused("data", 451) }, `portcullis_smtp_replies_refused_total{class="4xx",phase="data"}`},
		{"unknown phase", func() { m.Refused("bdat", 502) }, `portcullis_smtp_replies_refused_total{class="5xx",phase="other"}`},
		{"continue is accept", func() { m.Decision("continue") }, `portcullis_message_decisions_total{action="accept"}`},
		{"quarantine", func() { m.Decision("quarantine") }, `portcullis_message_decisions_total{action="quarantine"}`},
		{"stage verdict", func() { m.StageCall("dnsbl", "fail", time.Millisecond) }, `portcullis_stage_calls_total{outcome="fail",stage="dnsbl"}`},
		{"stage timeout", func() { m.StageCall("dnsbl", "timeout", time.Second) }, `portcullis_stage_calls_total{outcome="timeout",stage="dnsbl"}`},
		{"odd verdict", func() { m.StageCall("x", "MAYBE", 0) }, `portcullis_stage_calls_total{outcome="other",stage="x"}`},
		{"restart", func() { m.PluginRestart("dnsbl") }, `portcullis_plugin_restarts_total{stage="dnsbl"}`},
		{"bounced", func() { m.Delivery(Bounced) }, `portcullis_delivery_attempts_total{status="bounced"}`},
		{"dsn", func() { m.DSN("delayed") }, `portcullis_dsns_sent_total{action="delayed"}`},
		{"verified by probe", func() { m.Verification("undeliverable", false) }, `portcullis_recipient_verifications_total{result="undeliverable",source="probe"}`},
		{"verified from cache", func() { m.Verification("deliverable", true) }, `portcullis_recipient_verifications_total{result="deliverable",source="cache"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.do()
			if got := scrape(t, m)[tc.want]; got != "1" {
				t.Errorf("%s = %q, want 1", tc.want, got)
			}
		})
	}
}

// TestIgnored: values outside the enumerations change nothing.
func TestIgnored(t *testing.T) {
	m := New()
	before := len(scrape(t, m))
	m.Refused("rcpt", 250)
	m.Refused("rcpt", 700)
	m.Decision("tag")
	m.DSN("expanded")
	m.ConnRefused(Reason(99))
	m.Delivery(Status(-1))
	m.Verification("maybe", false)
	after := scrape(t, m)
	for k, v := range after {
		if strings.HasPrefix(k, "portcullis_") && !strings.HasPrefix(k, "portcullis_queue") && v != "0" {
			t.Errorf("%s = %s after ignored calls", k, v)
		}
	}
	if n := len(after); n != before {
		t.Errorf("series %d -> %d: an ignored value created one", before, n)
	}
}

func TestGaugesAndHistograms(t *testing.T) {
	m := New()
	n := 3
	m.SetQueueLen(func() int { return n })
	m.SessionStarted()
	m.SessionStarted()
	m.SessionEnded()
	m.Accepted("smtp", 1500)
	m.DeliveryTook(200 * time.Millisecond)
	m.StageCall("rdns", "pass", 300*time.Microsecond)
	got := scrape(t, m)
	want := map[string]string{
		"portcullis_queue_messages":                                               "3",
		"portcullis_smtp_sessions_in_progress":                                    "1",
		`portcullis_smtp_message_bytes_total{listener="smtp"}`:                    "1500",
		"portcullis_delivery_duration_seconds_count":                              "1",
		`portcullis_delivery_duration_seconds_bucket{le="0.27"}`:                  "1",
		`portcullis_delivery_duration_seconds_bucket{le="0.09"}`:                  "0",
		`portcullis_stage_call_duration_seconds_count{stage="rdns"}`:              "1",
		`portcullis_stage_call_duration_seconds_bucket{stage="rdns",le="0.0004"}`: "1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	n = 0
	if got := scrape(t, m)["portcullis_queue_messages"]; got != "0" {
		t.Errorf("queue gauge after drain = %q", got)
	}
}

// TestHelpAndRuntime: every gateway metric has HELP text, and the Go and
// process collectors are in the registry. (A vector shows once it has a
// child: listener and stage ones get theirs at first use.)
func TestHelpAndRuntime(t *testing.T) {
	m := New()
	m.Connection("smtp")
	m.Accepted("smtp", 1)
	m.StageCall("rdns", "pass", 0)
	body := fetch(t, m)
	for _, name := range []string{"portcullis_smtp_connections_total", "portcullis_smtp_sessions_in_progress",
		"portcullis_smtp_connections_refused_total", "portcullis_smtp_messages_accepted_total",
		"portcullis_smtp_message_bytes_total", "portcullis_smtp_replies_refused_total",
		"portcullis_message_decisions_total", "portcullis_stage_call_duration_seconds", "portcullis_stage_calls_total",
		"portcullis_plugin_restarts_total", "portcullis_delivery_attempts_total", "portcullis_delivery_duration_seconds",
		"portcullis_queue_messages", "portcullis_dsns_sent_total", "go_goroutines", "process_open_fds"} {
		if !strings.Contains(body, "# HELP "+name+" ") {
			t.Errorf("no HELP for %s", name)
		}
	}
}

func TestEnable(t *testing.T) {
	m := New()
	Enable(m)
	t.Cleanup(func() { Enable(nil) })
	Active().Connection("smtp")
	if got := scrape(t, m)[`portcullis_smtp_connections_total{listener="smtp"}`]; got != "1" {
		t.Errorf("through Active(): %q", got)
	}
}

// fetch scrapes m's handler over HTTP.
func fetch(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// scrape returns the series of m's exposition by their name{labels}.
func scrape(t *testing.T, m *Metrics) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(fetch(t, m), "\n") {
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			out[line[:i]] = line[i+1:]
		}
	}
	return out
}
