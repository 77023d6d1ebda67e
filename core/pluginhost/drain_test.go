package pluginhost

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/sdk"
)

// slowCall starts a call that the fault plugin answers after a second and
// returns once the host has it in flight.
func slowCall(t *testing.T, s *Stage) <-chan error {
	t.Helper()
	pid := strconv.Itoa(s.PID())
	errc := make(chan error, 1)
	go func() {
		res, err := check(s, "slow", 10*time.Second)
		if err == nil && res.Attrs["pid"] != pid {
			t.Errorf("slow call answered by pid %s, want %s", res.Attrs["pid"], pid)
		}
		errc <- err
	}()
	waitFor(t, "the slow call to be in flight", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.inflight > 0
	})
	return errc
}

// TestReloadLetsCallsFinish: a reload that replaces a stage's process
// lets the calls in flight on the old process finish before stopping it,
// and the old *Stage (which sessions that began before the reload still
// hold) passes later calls to its replacement.
func TestReloadLetsCallsFinish(t *testing.T) {
	h, _ := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "a", map[string]any{"tag": "old"}))
	old := mustStage(t, h, "a")
	oldPID := old.PID()
	errc := slowCall(t, old)

	changed := faultSpec(t, "a", map[string]any{"tag": "new"})
	changed.Env = sdk.Env{Hostname: "mx2.example.test"} // a new process
	if err := h.Reload(context.Background(), []Spec{changed}); err != nil {
		t.Fatal(err)
	}
	if mustStage(t, h, "a") == old {
		t.Fatal("the changed stage kept its process")
	}
	if err := <-errc; err != nil {
		t.Errorf("call in flight during the reload: %v", err)
	}
	res, err := check(old, "ok", 5*time.Second)
	if err != nil || res.Attrs["tag"] != "new" {
		t.Errorf("call on the replaced stage: %+v, %v; want the new process's answer", res, err)
	}
	waitFor(t, "the replaced process to stop", func() bool { return !alive(oldPID) })
}

// TestCloseLetsCallsFinish: Close waits for the calls in flight, then
// leaves no plugin process behind.
func TestCloseLetsCallsFinish(t *testing.T) {
	h, _ := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "a", nil))
	s := mustStage(t, h, "a")
	pid := s.PID()
	errc := slowCall(t, s)
	h.Close()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("call in flight during Close: %v", err)
		}
	default:
		t.Error("Close returned before the call in flight")
	}
	if alive(pid) {
		t.Errorf("plugin %d alive after Close", pid)
	}
	// Shutting down is not a reload: the pipeline applies on_error.
	if _, err := check(s, "ok", 5*time.Second); !errors.Is(err, ErrClosed) || errors.Is(err, pipeline.ErrRemoved) {
		t.Errorf("call after Close: %v, want ErrClosed only", err)
	}
}
