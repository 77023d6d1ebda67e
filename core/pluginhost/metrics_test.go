package pluginhost

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/metrics"
)

// TestRestartCounted: each death of a plugin counts one restart of its
// stage in the enabled metric set.
func TestRestartCounted(t *testing.T) {
	m := metrics.New()
	metrics.Enable(m)
	t.Cleanup(func() { metrics.Enable(nil) })
	h, _ := newHost(t, Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	mustLoad(t, h, faultSpec(t, "f", nil))
	s := mustStage(t, h, "f")
	for range 2 {
		pid := s.PID()
		check(s, "exit", 5*time.Second)
		waitFor(t, "a restart", func() bool { p := s.PID(); return p != 0 && p != pid })
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	want := `portcullis_plugin_restarts_total{stage="f"} 2` + "\n"
	if !strings.Contains(rec.Body.String(), want) {
		t.Errorf("no %q in the scrape:\n%s", want, rec.Body.String())
	}
}
