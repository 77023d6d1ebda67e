package pipeline

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/metrics"
	"github.com/portcullis-mta/portcullis/sdk"
)

// BenchmarkRunMetrics is one rcpt phase with four in-process stages,
// metrics off (the baseline of the same run) and on: the per-call
// counters must not show (compare ns/op and allocs/op as ratios).
func BenchmarkRunMetrics(b *testing.B) {
	var text strings.Builder
	text.WriteString("stages:\n")
	clients := map[string]StageClient{}
	for i := range 4 {
		name := fmt.Sprintf("s%d", i)
		fmt.Fprintf(&text, "  - {name: %s, plugin: x}\n", name)
		clients[name] = &fake{phases: []sdk.Phase{sdk.PhaseRcpt}, check: verdict(sdk.VerdictPass)}
	}
	text.WriteString("rules: [{name: r, when: 'rcpt == \"x@example.test\"', action: reject}]\n")
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("metrics=%v", on), func(b *testing.B) {
			if on {
				metrics.Enable(metrics.New())
				b.Cleanup(func() { metrics.Enable(nil) })
			}
			e := newEngine(b, text.String(), clients)
			req := request(sdk.PhaseRcpt)
			req.Envelope.Rcpt = "b@example.test"
			b.ReportAllocs()
			for b.Loop() {
				if d, err := e.Run(context.Background(), req, map[string]*sdk.Result{}); err != nil || d.Action != Continue {
					b.Fatal(d, err)
				}
			}
		})
	}
}

// TestStageCallsCounted: a stage's calls reach the enabled metric set by
// verdict, and a timed-out one counts as timeout.
func TestStageCallsCounted(t *testing.T) {
	m := metrics.New()
	metrics.Enable(m)
	t.Cleanup(func() { metrics.Enable(nil) })
	slow := &fake{phases: []sdk.Phase{sdk.PhaseRcpt}, check: func(ctx context.Context, _ *sdk.Request) (*sdk.Result, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	clients := map[string]StageClient{
		"ok":   &fake{phases: []sdk.Phase{sdk.PhaseRcpt}, check: verdict(sdk.VerdictFail)},
		"slow": slow,
	}
	e := newEngine(t, "stages:\n  - {name: ok, plugin: x}\n  - {name: slow, plugin: x, timeout: 10ms}\nrules: []\n", clients)
	if _, err := e.Run(context.Background(), request(sdk.PhaseRcpt), map[string]*sdk.Result{}); err != nil {
		t.Fatal(err)
	}
	body := scrapeText(t, m)
	for _, want := range []string{
		`portcullis_stage_calls_total{outcome="fail",stage="ok"} 1`,
		`portcullis_stage_calls_total{outcome="timeout",stage="slow"} 1`,
		`portcullis_stage_calls_total{outcome="error",stage="slow"} 0`,
		`portcullis_stage_call_duration_seconds_count{stage="slow"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
}

func scrapeText(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
