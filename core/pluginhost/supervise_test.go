//go:build linux

package pluginhost

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
)

// freeze stops process pid (SIGSTOP) as a frozen cgroup, a debugger or a
// plugin whose only server thread is stuck would leave it: it takes
// connections and answers nothing, not even go-plugin's Shutdown call.
func freeze(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	// The signal is delivered asynchronously: until the kernel shows the
	// process stopped, it may still answer a call.
	waitFor(t, "the plugin to be stopped", func() bool { return procState(pid) == 'T' })
}

// procState is the state letter of /proc/PID/stat (R, S, T, ...), 0 if
// unreadable.
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// "pid (comm) S ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// returns fails the test if f has not returned when waitFor would give up.
func returns(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	waitFor(t, what, func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
}

// TestFrozenPluginRestarted: a plugin that answers nothing at all is
// presumed hung and restarted like one whose calls merely hang; stopping
// it must not wait for an answer it will never give.
func TestFrozenPluginRestarted(t *testing.T) {
	h, logs := newHost(t, Options{WedgedAfter: 2})
	mustLoad(t, h, faultSpec(t, "f", nil))
	s := mustStage(t, h, "f")
	pid := s.PID()
	freeze(t, pid)
	for i := range 2 {
		if _, err := check(s, "ok", 100*time.Millisecond); err == nil {
			t.Fatalf("call %d to a frozen plugin passed", i)
		}
	}
	waitFor(t, "the frozen plugin to be replaced", func() bool {
		res, err := check(s, "ok", 5*time.Second)
		return err == nil && res.Attrs["pid"] != strconv.Itoa(pid)
	})
	if alive(pid) {
		t.Errorf("frozen plugin %d still there after its restart", pid)
	}
	if !contains(logs.String(), "presumed hung") {
		t.Errorf("no reason for the restart in the log:\n%s", logs.String())
	}
}

// TestCloseFrozenPlugin: Close (SIGTERM's drain) ends even when a plugin
// cannot answer the shutdown call, and leaves no process behind.
func TestCloseFrozenPlugin(t *testing.T) {
	h, _ := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "f", nil), faultSpec(t, "g", nil))
	pids := []int{mustStage(t, h, "f").PID(), mustStage(t, h, "g").PID()}
	freeze(t, pids[0])
	returns(t, "Close with a frozen plugin", h.Close)
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("plugin %d alive after Close", pid)
		}
	}
}

// TestPluginEnvironment: plugins, the restarted ones too, get the host's
// PID and PATH but not the rest of the host's environment, which may hold
// credentials (a smarthost password, a cloud token) no plugin needs.
func TestPluginEnvironment(t *testing.T) {
	t.Setenv("PORTCULLIS_TEST_SECRET", "hunter2")
	h, _ := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "f", nil))
	s := mustStage(t, h, "f")
	checkEnv(t, s.PID())
	first := s.PID()
	if _, err := check(s, "exit", 5*time.Second); !errors.Is(err, hostrpc.ErrUnavailable) {
		t.Fatalf("call that ended the plugin: %v", err)
	}
	waitFor(t, "a restart", func() bool { p := s.PID(); return p != 0 && p != first })
	checkEnv(t, s.PID())
}

func checkEnv(t *testing.T, pid int) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Split(string(b), "\x00")
	if contains(string(b), "hunter2") {
		t.Errorf("plugin %d has the host's secret in its environment: %q", pid, env)
	}
	for _, kv := range []string{hostrpc.HostPIDEnv + "=" + strconv.Itoa(os.Getpid()), "PATH=" + os.Getenv("PATH")} {
		if !slices.Contains(env, kv) {
			t.Errorf("plugin %d lacks %s in its environment: %q", pid, kv, env)
		}
	}
}

// TestStopDuringHangingStart: a stage stopped while its plugin, being
// restarted, hangs before the handshake stops at once and kills that
// process, instead of waiting for the start timeout.
func TestStopDuringHangingStart(t *testing.T) {
	old := startTimeout
	startTimeout = time.Hour
	t.Cleanup(func() { startTimeout = old })
	dir := shortTempDir(t)
	hang, pidFile := filepath.Join(dir, "hang"), filepath.Join(dir, "pid")
	plugin := script(t, `if [ -e '`+hang+`' ]; then echo $$ >'`+pidFile+`'; exec sleep 3600; fi; exec '`+faultBin(t)+"'\n")
	h, _ := newHost(t, Options{})
	var hung int
	t.Cleanup(func() { // before h.Close, should the test fail
		if hung != 0 {
			syscall.Kill(hung, syscall.SIGKILL)
		}
	})
	mustLoad(t, h, Spec{Name: "f", Plugin: plugin})
	s := mustStage(t, h, "f")
	if err := os.WriteFile(hang, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	check(s, "exit", 5*time.Second)
	waitFor(t, "the restart to hang", func() bool {
		check(s, "ok", 5*time.Second) // notices the death, should the last call not have
		b, _ := os.ReadFile(pidFile)
		hung, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return hung != 0
	})
	if _, err := check(s, "ok", 5*time.Second); !errors.Is(err, hostrpc.ErrUnavailable) {
		t.Errorf("call during the restart: %v, want unavailable", err)
	}
	returns(t, "Close during a hanging start", h.Close)
	if alive(hung) {
		t.Errorf("plugin %d, hanging at start, alive after Close", hung)
	}
}

// TestRestartRefusesAnotherPlugin: a plugin file replaced by another
// plugin is not taken at a restart (the pipeline was built for the old
// one's phases): the stage stays unavailable, says why, and comes back
// when the file does.
func TestRestartRefusesAnotherPlugin(t *testing.T) {
	swapped := filepath.Join(shortTempDir(t), "swapped")
	plugin := script(t, `if [ -e '`+swapped+`' ]; then exec '`+helloBin(t)+`'; fi; exec '`+faultBin(t)+"'\n")
	h, logs := newHost(t, Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	mustLoad(t, h, Spec{Name: "f", Plugin: plugin})
	s := mustStage(t, h, "f")
	first := s.PID()
	if err := os.WriteFile(swapped, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	check(s, "exit", 5*time.Second)
	waitFor(t, "the restart to take or refuse the other plugin", func() bool {
		check(s, "ok", 5*time.Second) // notices the death, should the last call not have
		p := s.PID()
		return p != 0 && p != first || contains(logs.String(), "changed on disk")
	})
	if pid := s.PID(); pid != 0 && pid != first {
		t.Fatalf("stage restarted with another plugin (pid %d); log:\n%s", pid, logs.String())
	}
	if !contains(logs.String(), "it is now hello (phases [data]), was fault (phases [connect data])") {
		t.Errorf("the log does not say what changed:\n%s", logs.String())
	}
	if _, err := check(s, "ok", 5*time.Second); !errors.Is(err, hostrpc.ErrUnavailable) {
		t.Errorf("call while the plugin is refused: %v, want unavailable", err)
	}
	if err := os.Remove(swapped); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stage back on its own plugin", func() bool {
		res, err := check(s, "ok", 5*time.Second)
		return err == nil && res.Attrs["pid"] == strconv.Itoa(s.PID())
	})
}

// TestHugeResultRefused: a result far over what the pipeline takes (1 MiB)
// is refused as it arrives, and the plugin keeps serving.
func TestHugeResultRefused(t *testing.T) {
	h, _ := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "f", nil))
	s := mustStage(t, h, "f")
	pid := s.PID()
	res, err := check(s, "huge", 10*time.Second)
	if err == nil {
		t.Fatalf("a result with a %d-byte attribute was taken", len(res.Attrs["huge"]))
	}
	if errors.Is(err, hostrpc.ErrUnavailable) {
		t.Errorf("huge result: %v; want a stage error, not an unavailable plugin", err)
	}
	if res, err := check(s, "ok", 5*time.Second); err != nil || res.Attrs["pid"] != strconv.Itoa(pid) {
		t.Errorf("after a huge result: %+v, %v; want the same process serving", res, err)
	}
}

// TestChildHoldsPluginOutput: a plugin that left a child of its own
// holding its stdout and stderr (a helper started in the background) and
// then died is still restarted, and the child does not outlive it: go-plugin
// waits for the end of the plugin's output before it reaps the process.
func TestChildHoldsPluginOutput(t *testing.T) {
	pidFile := filepath.Join(shortTempDir(t), "pid")
	plugin := script(t, `sleep 3600 & echo $! >'`+pidFile+`'; exec '`+faultBin(t)+"'\n")
	h, _ := newHost(t, Options{})
	var child int
	t.Cleanup(func() { // before h.Close, should the test fail
		if child != 0 {
			syscall.Kill(child, syscall.SIGKILL)
		}
	})
	mustLoad(t, h, Spec{Name: "f", Plugin: plugin})
	s := mustStage(t, h, "f")
	pid := s.PID()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if child, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		t.Fatal(err)
	}
	check(s, "exit", 5*time.Second)
	waitFor(t, "the plugin to be restarted", func() bool {
		res, err := check(s, "ok", 5*time.Second)
		return err == nil && res.Attrs["pid"] != strconv.Itoa(pid)
	})
	if alive(child) {
		t.Errorf("the dead plugin's child %d is still there", child)
	}
}
