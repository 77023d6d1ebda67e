package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
)

// TestKilledUnderLoad: SIGKILL the plugin while calls run in parallel.
// Calls then fail with an error (never hang, never a result), the host
// restarts the plugin, and later calls pass through the new process.
func TestKilledUnderLoad(t *testing.T) {
	h, logs := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "f", nil))
	s := mustStage(t, h, "f")
	oldPID := s.PID()

	var ok, failed, unavailable atomic.Int64
	var lastPID atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := check(s, "ok", 5*time.Second)
				switch {
				case err == nil:
					ok.Add(1)
					pid, _ := strconv.Atoi(res.Attrs["pid"])
					lastPID.Store(int64(pid))
				case errors.Is(err, hostrpc.ErrUnavailable):
					unavailable.Add(1)
					failed.Add(1)
				default:
					failed.Add(1)
					t.Errorf("call failed with %v, want an unavailable plugin", err)
				}
			}
		})
	}
	waitFor(t, "calls to pass before the kill", func() bool { return ok.Load() > 50 })
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "calls to fail after the kill", func() bool { return failed.Load() > 0 })
	okAtKill := ok.Load()
	waitFor(t, "calls to pass through a restarted plugin", func() bool {
		p := lastPID.Load()
		return p != 0 && p != int64(oldPID) && ok.Load() > okAtKill+50
	})
	close(stop)
	wg.Wait()
	if newPID := s.PID(); newPID == 0 || newPID == oldPID {
		t.Errorf("stage pid %d after restart (was %d)", newPID, oldPID)
	}
	if alive(oldPID) {
		t.Errorf("killed plugin %d not reaped", oldPID)
	}
	if !contains(logs.String(), `msg="plugin restarted" stage=f`) {
		t.Errorf("no restart in the log:\n%s", logs.String())
	}
	t.Logf("calls: %d passed, %d failed (%d unavailable)", ok.Load(), failed.Load(), unavailable.Load())
}

// TestExitBetweenCalls: a plugin that exits by itself is noticed (go-plugin
// keeps a dead client around) and restarted.
func TestExitBetweenCalls(t *testing.T) {
	h, _ := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "f", nil))
	s := mustStage(t, h, "f")
	oldPID := s.PID()
	if _, err := check(s, "exit", 5*time.Second); !errors.Is(err, hostrpc.ErrUnavailable) {
		t.Fatalf("call that killed the plugin: %v, want unavailable", err)
	}
	waitFor(t, "the plugin to come back", func() bool {
		res, err := check(s, "ok", 5*time.Second)
		return err == nil && res.Attrs["pid"] != strconv.Itoa(oldPID)
	})
}

// TestKilledPluginRestartedBeforeNextCall: a plugin killed from outside
// (the OOM killer, an admin's kill -9) between messages is restarted when
// its exit is seen, so the next message's call is served by the new
// process; it used to fail (and get the stage's on_error: a reject, a
// tempfail, or a pass unchecked) and only then start the restart.
func TestKilledPluginRestartedBeforeNextCall(t *testing.T) {
	h, logs := newHost(t, Options{MinBackoff: 10 * time.Millisecond})
	mustLoad(t, h, faultSpec(t, "f", nil))
	s := mustStage(t, h, "f")
	oldPID := s.PID()
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restart, with no call to notice the death", func() bool {
		p := s.PID()
		return p != 0 && p != oldPID
	})
	res, err := check(s, "ok", 5*time.Second)
	if err != nil || res.Attrs["pid"] == strconv.Itoa(oldPID) {
		t.Fatalf("first call after the kill: %+v %v\n%s", res, err, logs.String())
	}
}

// TestRestartBackoff: a plugin that keeps dying is restarted with a
// growing delay, and each restart still serves calls.
func TestRestartBackoff(t *testing.T) {
	h, logs := newHost(t, Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	mustLoad(t, h, faultSpec(t, "f", nil))
	s := mustStage(t, h, "f")
	var delays []time.Duration
	for range 4 {
		pid := s.PID()
		check(s, "exit", 5*time.Second)
		waitFor(t, "a restart", func() bool { p := s.PID(); return p != 0 && p != pid })
		s.mu.Lock()
		delays = append(delays, s.backoff)
		s.mu.Unlock()
	}
	want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("restart delays %v, want %v\n%s", delays, want, logs.String())
		}
	}
}

// TestHang: a plugin that never answers. Each call ends at its deadline
// with an error; no caller is left waiting; the plugin still serves others.
func TestHang(t *testing.T) {
	h, _ := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "slow", nil))
	s := mustStage(t, h, "slow")
	pid := s.PID()
	const callers = 32
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := check(s, "hang", 200*time.Millisecond)
			errs <- err
		}()
	}
	for range callers {
		if err := <-errs; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("hung call returned %v, want a deadline error", err)
		}
	}
	if _, err := check(s, "ok", 5*time.Second); err != nil {
		t.Fatalf("plugin with hung calls no longer serves: %v", err)
	}
	if s.PID() != pid {
		t.Errorf("timeouts restarted the plugin (pid %d -> %d)", pid, s.PID())
	}
}

// TestWedgedPluginRestarted: a plugin whose calls keep timing out is
// presumed hung and restarted; calls then pass through the new process.
func TestWedgedPluginRestarted(t *testing.T) {
	h, logs := newHost(t, Options{WedgedAfter: 5})
	mustLoad(t, h, faultSpec(t, "w", nil))
	s := mustStage(t, h, "w")
	pid := s.PID()
	for i := range 5 {
		if _, err := check(s, "hang", 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d: %v, want a deadline error", i, err)
		}
	}
	waitFor(t, "the hung plugin to be replaced", func() bool {
		res, err := check(s, "ok", 5*time.Second)
		return err == nil && res.Attrs["pid"] != strconv.Itoa(pid)
	})
	if !contains(logs.String(), "presumed hung: 5 calls in a row timed out") {
		t.Errorf("no reason for the restart in the log:\n%s", logs.String())
	}
}

// TestExitLeavingHelper: a plugin that exits leaving a helper with its
// stdout and stderr open is restarted all the same, and a helper left in
// its process group goes with it. go-plugin reaps a plugin only once
// those pipes close: a helper that left the group (setsid) held a dead
// plugin unreaped, its stage down (every message its on_error), and the
// gateway's stop, for as long as it lived (30 s here, longer than
// waitFor's bound); one left in the group outlived the plugin.
func TestExitLeavingHelper(t *testing.T) {
	for _, how := range []string{"escape", "helper"} {
		t.Run(how, func(t *testing.T) {
			h, _ := newHost(t, Options{MinBackoff: 10 * time.Millisecond})
			mustLoad(t, h, faultSpec(t, "f", nil))
			s := mustStage(t, h, "f")
			oldPID := s.PID()
			pidFile := filepath.Join(t.TempDir(), "helper.pid")
			req := connect(how)
			req.Envelope.From = pidFile
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = s.Check(ctx, req)
			cancel()
			var helper int
			waitFor(t, "the helper's PID", func() bool {
				b, err := os.ReadFile(pidFile)
				helper, _ = strconv.Atoi(string(b))
				return err == nil && helper > 0
			})
			t.Cleanup(func() { syscall.Kill(helper, syscall.SIGKILL) })
			waitFor(t, "the plugin to come back", func() bool {
				res, err := check(s, "ok", 2*time.Second)
				return err == nil && res.Attrs["pid"] != strconv.Itoa(oldPID)
			})
			if how == "helper" {
				waitFor(t, "the helper left in the group gone", func() bool {
					b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", helper))
					f := strings.Fields(string(b))
					return len(f) < 3 || f[2] == "Z"
				})
			}
		})
	}
}
