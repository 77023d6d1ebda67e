package pluginhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// checkTimedOut asserts that err is a Configure timeout of stage, worded
// as one and not as a refusal or in gRPC's words.
func checkTimedOut(t *testing.T, err error, stage string) {
	t.Helper()
	if !errors.Is(err, ErrConfigureTimeout) || errors.Is(err, ErrConfigRefused) {
		t.Errorf("error = %v; want ErrConfigureTimeout, not ErrConfigRefused", err)
	}
	if err == nil {
		t.FailNow()
	}
	msg := err.Error()
	if !strings.Contains(msg, "stage "+stage+": Configure timed out after ") {
		t.Errorf("error %q does not say that stage %s's Configure timed out", msg, stage)
	}
	for _, bad := range []string{"refused", "RST_STREAM", "rpc error", "context deadline exceeded", "unavailable"} {
		if strings.Contains(msg, bad) {
			t.Errorf("error %q contains %q", msg, bad)
		}
	}
}

// TestReloadConfigureTimeout: a Configure that ignores its context and
// overruns the Reload's deadline fails the Reload as a timeout, not a
// refusal, and its process (which would apply the new config when the
// sleep ends, while the host keeps the old one as committed) is killed
// and replaced by one configured with the committed config.
func TestReloadConfigureTimeout(t *testing.T) {
	h, logs := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "a", map[string]any{"tag": "1"}))
	a := mustStage(t, h, "a")
	pid := a.PID()

	const sleep = 2 * time.Second
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := h.Reload(ctx, []Spec{faultSpec(t, "a", map[string]any{"tag": "2", "configure_sleep": sleep.String()})})
	checkTimedOut(t, err, "a")
	if took := time.Since(began); took >= sleep {
		t.Errorf("Reload took %v, waited for the sleeping Configure", took)
	}
	if got := mustStage(t, h, "a"); got != a {
		t.Fatal("a failed Reload replaced the stage")
	}

	waitFor(t, "the slow process to be killed", func() bool { return !alive(pid) })
	waitFor(t, "the stage to be restarted", func() bool { p := a.PID(); return p != 0 && p != pid })
	newPID := a.PID()
	checkTag := func(when string) {
		t.Helper()
		res, err := check(a, "ok", 5*time.Second)
		if err != nil || res.Attrs["tag"] != "1" || res.Attrs["pid"] != strconv.Itoa(newPID) {
			t.Fatalf("%s: %+v, %v; want tag 1 (the committed config) from pid %d\n%s", when, res, err, newPID, logs.String())
		}
	}
	checkTag("after the timed-out reload")
	time.Sleep(time.Until(began.Add(sleep + 500*time.Millisecond)))
	checkTag("once the slow Configure would have ended")
	if got := a.Spec().Config["tag"]; got != "1" {
		t.Errorf("committed config tag = %v, want 1", got)
	}

	// The stage reloads as usual afterwards.
	if err := h.Reload(context.Background(), []Spec{faultSpec(t, "a", map[string]any{"tag": "3"})}); err != nil {
		t.Fatal(err)
	}
	if res, err := check(mustStage(t, h, "a"), "ok", 5*time.Second); err != nil || res.Attrs["tag"] != "3" {
		t.Fatalf("after a later reload: %+v, %v; want tag 3", res, err)
	}
}

// TestReloadConfigureTimeoutRollsBack: when one stage's Configure times
// out, the stages that took the new config get the committed one back,
// though the Reload's context has run out by then.
func TestReloadConfigureTimeoutRollsBack(t *testing.T) {
	h, logs := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "a", map[string]any{"tag": "1"}), faultSpec(t, "b", map[string]any{"tag": "1"}))
	a := mustStage(t, h, "a")
	pid := a.PID()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := h.Reload(ctx, []Spec{
		faultSpec(t, "a", map[string]any{"tag": "2"}),
		faultSpec(t, "b", map[string]any{"tag": "2", "configure_sleep": "2s"}),
	})
	checkTimedOut(t, err, "b")
	res, err := check(a, "ok", 5*time.Second)
	if err != nil || res.Attrs["tag"] != "1" || a.PID() != pid {
		t.Fatalf("stage a after the failed reload: %+v, %v, pid %d (was %d); want tag 1 from the same process\n%s",
			res, err, a.PID(), pid, logs.String())
	}
}

// TestRollbackConfigureTimeout: a process that does not take its
// committed config back within rollbackTimeout is killed and restarted
// with it.
func TestRollbackConfigureTimeout(t *testing.T) {
	old := rollbackTimeout
	rollbackTimeout = 200 * time.Millisecond
	t.Cleanup(func() { rollbackTimeout = old })

	h, logs := newHost(t, Options{})
	// The committed config sleeps in Configure: the rollback overruns.
	// b keeps its process too, and refuses its new config.
	mustLoad(t, h, faultSpec(t, "a", map[string]any{"tag": "1", "configure_sleep": "1s"}), faultSpec(t, "b", nil))
	a := mustStage(t, h, "a")
	pid := a.PID()

	err := h.Reload(context.Background(), []Spec{
		faultSpec(t, "a", map[string]any{"tag": "2"}),
		faultSpec(t, "b", map[string]any{"refuse": "x"}),
	})
	if !errors.Is(err, ErrConfigRefused) {
		t.Fatalf("reload error = %v, want stage b's refusal", err)
	}
	if !contains(logs.String(), `msg="restoring the previous config failed" stage=a error="Configure timed out after `) {
		t.Errorf("no rollback timeout in the log:\n%s", logs.String())
	}
	waitFor(t, "the process to be killed", func() bool { return !alive(pid) })
	waitFor(t, "the stage to be restarted", func() bool { p := a.PID(); return p != 0 && p != pid })
	res, err := check(a, "ok", 5*time.Second)
	if err != nil || res.Attrs["tag"] != "1" {
		t.Fatalf("after the restart: %+v, %v; want tag 1\n%s", res, err, logs.String())
	}
}

// TestReloadStartsNewStagesFirst: a running stage gets the new config only
// once every new stage has started: while a new one takes its time to
// fail (here its Configure overruns the reload's deadline), the running
// one still answers with the committed config, and keeps it when the
// reload is refused. Both went at once before, and the running stage
// answered with a config never committed, under the old rules, until the
// new one failed (up to a minute).
func TestReloadStartsNewStagesFirst(t *testing.T) {
	h, _ := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "a", map[string]any{"tag": "1"}))
	a := mustStage(t, h, "a")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- h.Reload(ctx, []Spec{
			faultSpec(t, "a", map[string]any{"tag": "2"}),
			faultSpec(t, "slow", map[string]any{"configure_sleep": "3s"}),
		})
	}()
	for {
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("reload with a stage that cannot start in time succeeded")
			}
			if res, err := check(a, "ok", 5*time.Second); err != nil || res.Attrs["tag"] != "1" {
				t.Fatalf("after the refused reload: %+v %v; want tag 1", res, err)
			}
			return
		default:
		}
		if res, err := check(a, "ok", 5*time.Second); err == nil && res.Attrs["tag"] != "1" {
			t.Fatalf("while the new stage starts: tag %q, want 1 (the committed config)", res.Attrs["tag"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLoadConfigureTimeout: at load, a Configure that overruns the
// deadline fails as a timeout, not a refusal, and leaves no process.
func TestLoadConfigureTimeout(t *testing.T) {
	h, _ := newHost(t, Options{})
	pidfile := filepath.Join(t.TempDir(), "pid")
	// The load's deadline passes once the plugin is inside Configure (it
	// writes its pid there, then sleeps): a real deadline would also cover
	// the plugin's start, which on a loaded machine took longer than any
	// short one, so the test failed on the start instead.
	const sleep = time.Minute
	began := time.Now()
	ctx := newExpiring()
	t.Cleanup(ctx.expire)
	go func() {
		for ctx.Err() == nil && time.Since(began) < sleep {
			if _, err := os.Stat(pidfile); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		ctx.expire()
	}()
	err := h.Load(ctx, []Spec{faultSpec(t, "f", map[string]any{"configure_sleep": sleep.String(), "pidfile": pidfile})})
	checkTimedOut(t, err, "f")
	if took := time.Since(began); took >= sleep {
		t.Errorf("Load took %v, waited for the sleeping Configure", took)
	}
	b, rerr := os.ReadFile(pidfile)
	if rerr != nil {
		t.Fatalf("the plugin wrote no pid: %v", rerr)
	}
	pid, _ := strconv.Atoi(string(b))
	if pid == 0 || alive(pid) {
		t.Errorf("plugin process %d (of %q) still running after the failed Load", pid, b)
	}
	if _, ok := h.Stage("f"); ok {
		t.Error("the stage of the failed Load is listed")
	}
}

// TestRestartConfigureTimeout: a restart whose Configure overruns
// startTimeout is logged as a timeout and tried again.
func TestRestartConfigureTimeout(t *testing.T) {
	// Set before newHost: its cleanup (Close, which waits for the
	// restart goroutine reading it) then runs before this one.
	old := startTimeout
	startTimeout = 300 * time.Millisecond
	t.Cleanup(func() { startTimeout = old })
	h, logs := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "f", map[string]any{"configure_sleep": "1s"}))
	s := mustStage(t, h, "f")
	if _, err := check(s, "exit", 5*time.Second); err == nil {
		t.Fatal("the call that ends the plugin succeeded")
	}
	waitFor(t, "a restart to fail on the timeout", func() bool {
		return contains(logs.String(), `msg="plugin restart failed" stage=f error="Configure timed out after `)
	})
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Minute:                           "60s",
		59*time.Second + 600*time.Millisecond: "60s",
		30 * time.Second:                      "30s",
		1234 * time.Millisecond:               "1.2s",
		300*time.Millisecond + 4321:           "300ms",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// expiring is a context whose deadline passes when expire is called, not
// at a time: Err is then context.DeadlineExceeded, as for a deadline.
type expiring struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func newExpiring() *expiring {
	return &expiring{Context: context.Background(), done: make(chan struct{})}
}

func (c *expiring) expire()               { c.once.Do(func() { close(c.done) }) }
func (c *expiring) Done() <-chan struct{} { return c.done }
func (c *expiring) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}
