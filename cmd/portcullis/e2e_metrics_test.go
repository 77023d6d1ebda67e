package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

var metricsRE = regexp.MustCompile(`msg="metrics: serving /metrics" addr=(\S+)`)

// TestE2EMetrics runs `portcullis run` with examples/plugin-hello and
// metrics.address set, sends one accepted message, one the rules refuse
// at DATA and one relay attempt from an untrusted address, waits for the
// delivery and checks that every counter moved by exactly that much. Then
// a SIGHUP that changes the address moves the endpoint, counts intact.
func TestE2EMetrics(t *testing.T) {
	hop := startNextHop(t, false)
	cfg, dir := e2eSetup(t, hop, map[string]string{"rules.yaml": helloRules(t)})
	placePlugin(t, "../../examples/plugin-hello", filepath.Join(dir, "plugin-hello"))
	setMetricsAddr(t, cfg, "127.0.0.1:0")
	g := startGateway(t, cfg)
	url := "http://" + waitMetricsAddr(t, g, 1) + "/metrics"

	if r := sendOne(g.addr, "b@example.test", subjectMsg("metrics one")); r.queueID() == "" {
		t.Fatalf("accepted message: reply %v", r)
	}
	if r := sendOne(g.addr, "b@example.test", subjectMsg("[reject-me] metrics two")); r.code != 550 {
		t.Fatalf("rejected message: reply %v, want 550", r)
	}
	if r := sendUntrusted(t, g.addr, "x@elsewhere.example"); r.code/100 != 5 {
		t.Fatalf("relay from 127.0.0.2: reply %v, want 5xx", r)
	}
	hop.waitFor(t, "the accepted message", bySubject("metrics one"))
	got := scrapeUntil(t, url, func(m map[string]string) bool {
		return m[`portcullis_delivery_attempts_total{status="sent"}`] == "1" &&
			m["portcullis_queue_messages"] == "0" && m["portcullis_smtp_sessions_in_progress"] == "0"
	})
	want := map[string]string{
		`portcullis_smtp_connections_total{listener="mx"}`:                "3",
		`portcullis_smtp_messages_accepted_total{listener="mx"}`:          "1",
		`portcullis_smtp_replies_refused_total{class="5xx",phase="rcpt"}`: "1",
		`portcullis_smtp_replies_refused_total{class="5xx",phase="data"}`: "1",
		`portcullis_smtp_replies_refused_total{class="5xx",phase="mail"}`: "0",
		`portcullis_smtp_replies_refused_total{class="4xx",phase="rcpt"}`: "0",
		`portcullis_smtp_connections_refused_total{reason="limit"}`:       "0",
		`portcullis_smtp_connections_refused_total{reason="rule"}`:        "0",
		`portcullis_message_decisions_total{action="accept"}`:             "1",
		`portcullis_message_decisions_total{action="reject"}`:             "1",
		`portcullis_message_decisions_total{action="tempfail"}`:           "0",
		`portcullis_stage_call_duration_seconds_count{stage="hello"}`:     "2",
		`portcullis_stage_calls_total{outcome="error",stage="hello"}`:     "0",
		`portcullis_stage_calls_total{outcome="timeout",stage="hello"}`:   "0",
		`portcullis_delivery_attempts_total{status="sent"}`:               "1",
		`portcullis_delivery_attempts_total{status="deferred"}`:           "0",
		`portcullis_delivery_attempts_total{status="bounced"}`:            "0",
		`portcullis_delivery_duration_seconds_count`:                      "1",
		`portcullis_dsns_sent_total{action="failed"}`:                     "0",
		"portcullis_queue_messages":                                       "0",
		"portcullis_smtp_sessions_in_progress":                            "0",
	}
	checkSeries(t, got, want)
	if sumPrefix(got, `portcullis_stage_calls_total{`) != 2 {
		t.Errorf("stage calls by outcome sum to %v, want 2", sumPrefix(got, `portcullis_stage_calls_total{`))
	}
	if got[`portcullis_smtp_message_bytes_total{listener="mx"}`] == "0" || got["go_goroutines"] == "" {
		t.Errorf("bytes %q, go_goroutines %q", got[`portcullis_smtp_message_bytes_total{listener="mx"}`], got["go_goroutines"])
	}

	t.Run("reload moves the endpoint", func(t *testing.T) {
		setMetricsAddr(t, cfg, "127.0.0.3:0")
		if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		next := "http://" + waitMetricsAddr(t, g, 2) + "/metrics"
		after := scrapeUntil(t, next, func(map[string]string) bool { return true })
		checkSeries(t, after, map[string]string{`portcullis_smtp_messages_accepted_total{listener="mx"}`: "1"})
		if _, err := http.Get(url); err == nil {
			t.Errorf("the old address %s still answers after the reload", url)
		}
	})
}

// setMetricsAddr rewrites (or adds) the metrics line of the config.
func setMetricsAddr(t *testing.T, cfg, addr string) {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.HasPrefix(l, "metrics:") {
			lines = append(lines, l)
		}
	}
	lines = append(lines, `metrics: {address: "`+addr+`"}`)
	if err := os.WriteFile(cfg, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitMetricsAddr returns the address of the nth "serving /metrics" log line.
func waitMetricsAddr(t *testing.T, g *gateway, n int) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := metricsRE.FindAllStringSubmatch(g.logs(), -1); len(m) >= n {
			return m[n-1][1]
		}
	}
	t.Fatalf("no metrics endpoint #%d in the log:\n%s", n, g.logs())
	return ""
}

// sendUntrusted sends a message from 127.0.0.2, which relay.networks does
// not trust.
func sendUntrusted(t *testing.T, addr, rcpt string) reply {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := smtp.NewClient(conn)
	defer c.Close()
	r := sendOn(c, rcpt, subjectMsg("metrics relay"), true)
	_ = c.Quit()
	return r
}

// scrapeUntil scrapes url until ok holds of the series (or fails after 20 s).
func scrapeUntil(t *testing.T, url string, ok func(map[string]string) bool) map[string]string {
	t.Helper()
	var last map[string]string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			continue
		}
		last = map[string]string{}
		for _, line := range strings.Split(string(b), "\n") {
			if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
				last[line[:i]] = line[i+1:]
			}
		}
		if ok(last) {
			return last
		}
	}
	t.Fatalf("metrics at %s never reached the expected state; last scrape:\n%v", url, last)
	return nil
}

func checkSeries(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// sumPrefix adds up the series whose name{labels} starts with prefix.
func sumPrefix(m map[string]string, prefix string) float64 {
	var n float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				n += f
			}
		}
	}
	return n
}
