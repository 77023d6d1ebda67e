package pluginhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
)

func TestLoadAndCheck(t *testing.T) {
	h, _ := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "f", map[string]any{"tag": "one"}))
	s := mustStage(t, h, "f")
	want := sdk.Info{Name: "fault", Version: "1", Phases: []sdk.Phase{sdk.PhaseConnect, sdk.PhaseData}}
	if !reflect.DeepEqual(s.Info(), want) {
		t.Errorf("Info = %+v, want %+v", s.Info(), want)
	}
	res, err := check(s, "ok", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != sdk.VerdictPass || res.Attrs["tag"] != "one" || res.Attrs["pid"] != strconv.Itoa(s.PID()) {
		t.Errorf("result %+v (stage pid %d)", res, s.PID())
	}
	if _, err := check(s, "error", 5*time.Second); err == nil || !strings.Contains(err.Error(), "failed on request") ||
		errors.Is(err, hostrpc.ErrUnavailable) {
		t.Errorf("stage error = %v, want the stage's text, not unavailable", err)
	}
	if got := s.PID(); got != atoiOr(res.Attrs["pid"]) {
		t.Errorf("a stage error restarted the plugin (pid %d -> %d)", atoiOr(res.Attrs["pid"]), got)
	}
}

func atoiOr(s string) int { n, _ := strconv.Atoi(s); return n }

func TestBuiltin(t *testing.T) {
	// A built-in runs as `Self plugin NAME`; the fault plugin ignores its arguments.
	h, _ := newHost(t, Options{Self: faultBin(t), IsBuiltin: func(n string) bool { return n == "fault" }})
	mustLoad(t, h, Spec{Name: "b", Plugin: "fault"})
	if _, err := check(mustStage(t, h, "b"), "ok", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestLoadFailures(t *testing.T) {
	printer := script(t, "echo 'starting up!'\nexec sleep 30\n")
	v2 := script(t, "echo '1|2|unix|/nonexistent/sock|grpc|'\nexec sleep 30\n")
	tests := []struct {
		name    string
		specs   []Spec
		wantErr string
	}{
		{"config refused", []Spec{faultSpec(t, "ok", nil), faultSpec(t, "bad", map[string]any{"refuse": "no way"})},
			"stage bad: config refused: refused: no way"},
		{"missing binary", []Spec{{Name: "m", Plugin: "/nonexistent/plugin"}}, "stage m:"},
		{"not a plugin", []Spec{{Name: "n", Plugin: "/bin/true"}}, "stage n:"},
		// A plugin that prints before sdk.Serve fails the handshake, and
		// go-plugin only says "Unrecognized remote plugin message".
		{"prints before Serve", []Spec{{Name: "p", Plugin: printer}},
			`: it wrote "starting up!" to stdout, where the handshake goes: a plugin writes nothing to stdout before sdk.Serve`},
		// go-plugin says "incompatible API version with plugin".
		{"other protocol", []Spec{{Name: "v", Plugin: v2}},
			"stage v: starting plugin " + v2 + ": it speaks plugin protocol 2, this gateway 1: build it against this gateway's SDK"},
		{"relative path from config dir", []Spec{{Name: "r", Plugin: "plugin", Env: sdk.Env{ConfigDir: "/nonexistent"}}},
			"/nonexistent/plugin"},
		{"duplicate", []Spec{faultSpec(t, "d", nil), faultSpec(t, "d", nil)}, "stage d: declared twice"},
		{"builtin without Self", []Spec{{Name: "x", Plugin: "dnsbl"}}, "Options.Self"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newHost(t, Options{IsBuiltin: func(n string) bool { return n == "dnsbl" }})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := h.Load(ctx, tt.specs)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load error = %v, want it to contain %q", err, tt.wantErr)
			}
			for _, sp := range tt.specs {
				if _, ok := h.Stage(sp.Name); ok {
					t.Errorf("stage %s is loaded after a failed Load", sp.Name)
				}
			}
			if dir := h.SocketDir(); dir != "" {
				if left, _ := os.ReadDir(dir); len(left) != 0 {
					t.Errorf("socket directory keeps %d entries of stopped plugins", len(left))
				}
			}
		})
	}
}

func TestReload(t *testing.T) {
	h, _ := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "a", map[string]any{"tag": "1"}), faultSpec(t, "gone", nil))
	a := mustStage(t, h, "a")
	gone := mustStage(t, h, "gone")
	pid := a.PID()
	ctx := context.Background()

	// Same plugin and environment: the process stays, the config changes.
	if err := h.Reload(ctx, []Spec{faultSpec(t, "a", map[string]any{"tag": "2"})}); err != nil {
		t.Fatal(err)
	}
	if res, err := check(mustStage(t, h, "a"), "ok", 5*time.Second); err != nil || res.Attrs["tag"] != "2" || a.PID() != pid {
		t.Fatalf("after reload: %+v, %v, pid %d (was %d)", res, err, a.PID(), pid)
	}
	if _, err := check(gone, "ok", 5*time.Second); !errors.Is(err, ErrClosed) || !errors.Is(err, pipeline.ErrRemoved) {
		t.Errorf("a dropped stage answered: %v; want ErrClosed and pipeline.ErrRemoved", err)
	}
	if _, ok := h.Stage("gone"); ok {
		t.Error("dropped stage still listed")
	}

	// A bad new set: refused, the old set keeps running with its config.
	err := h.Reload(ctx, []Spec{faultSpec(t, "a", map[string]any{"tag": "3"}), faultSpec(t, "b", map[string]any{"refuse": "x"})})
	if err == nil || !strings.Contains(err.Error(), "stage b") {
		t.Fatalf("bad reload error = %v", err)
	}
	err = h.Reload(ctx, []Spec{faultSpec(t, "a", map[string]any{"refuse": "x"})})
	if err == nil || !strings.Contains(err.Error(), "stage a: config refused") {
		t.Fatalf("bad reload error = %v", err)
	}
	if _, ok := h.Stage("b"); ok {
		t.Error("stage of a refused reload is loaded")
	}
	if res, err := check(mustStage(t, h, "a"), "ok", 5*time.Second); err != nil || res.Attrs["tag"] != "2" {
		t.Fatalf("after a refused reload: %+v, %v; want the old config (tag 2)", res, err)
	}

	// Another plugin under the same name: a new process replaces the old.
	if err := h.Reload(ctx, []Spec{{Name: "a", Plugin: helloBin(t)}}); err != nil {
		t.Fatal(err)
	}
	if got := mustStage(t, h, "a").Info().Name; got != "hello" {
		t.Errorf("stage a is now plugin %q, want hello", got)
	}
	waitFor(t, "the replaced process to be gone", func() bool { return !alive(pid) })
}

// alive reports whether process pid exists (and is not a zombie we own).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !bytes.Contains(b, []byte(") Z "))
}

func TestCloseRemovesSocketsAndStopsPlugins(t *testing.T) {
	parent := filepath.Join(shortTempDir(t), "s")
	h, _ := newHost(t, Options{SocketDir: parent})
	mustLoad(t, h, faultSpec(t, "a", nil), Spec{Name: "b", Plugin: helloBin(t)})
	dir := h.SocketDir()
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %v, want 0700", st.Mode().Perm())
	}
	var socks int
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, _ error) error {
		if d != nil && d.Type()&os.ModeSocket != 0 {
			socks++
		}
		return nil
	})
	if socks < 2 {
		t.Errorf("found %d sockets under %s, want each plugin's there", socks, dir)
	}
	pids := []int{mustStage(t, h, "a").PID(), mustStage(t, h, "b").PID()}
	h.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("socket directory %s still there after Close (%v)", dir, err)
	}
	if _, err := os.Stat(parent); !os.IsNotExist(err) {
		t.Errorf("socket parent %s, created by the host, still there after Close", parent)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("plugin pid %d alive after Close", pid)
		}
	}
	if err := h.Load(context.Background(), []Spec{faultSpec(t, "a", nil)}); !errors.Is(err, ErrClosed) {
		t.Errorf("Load after Close = %v, want ErrClosed", err)
	}
}

func TestPluginLogs(t *testing.T) {
	h, logs := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "loud", nil))
	if _, err := check(mustStage(t, h, "loud"), "log", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the plugin's log lines", func() bool {
		l := logs.String()
		return contains(l, `level=WARN msg="structured line" stage=loud`) && contains(l, "k=v") &&
			contains(l, `msg="plugin stderr" stage=loud line="raw stderr line"`)
	})
	if n := strings.Count(logs.String(), "raw stderr line"); n != 1 {
		t.Errorf("raw stderr line logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestPluginBadLogLines: lines on a plugin's stderr that go-plugin's
// hclog parser panicked on (a non-string @message, @level or @timestamp:
// the whole gateway died), dropped (a @timestamp it cannot parse, a level
// it does not know) or split into debug pieces (over 64 KiB) are all
// logged, at their level, and the host and plugin go on.
func TestPluginBadLogLines(t *testing.T) {
	h, logs := newHost(t, Options{})
	mustLoad(t, h, faultSpec(t, "bad", nil))
	st := mustStage(t, h, "bad")
	if _, err := check(st, "badlog", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the last line", func() bool { return contains(logs.String(), `line="after the bad lines"`) })
	for _, want := range []string{
		`level=INFO msg=5 stage=bad x=1`,
		`level=INFO msg="numeric level" stage=bad plugin_level=1`,
		`level=ERROR msg="bad timestamp" stage=bad`,
		`level=ERROR msg="numeric timestamp" stage=bad`,
		`level=WARN msg="own timestamp" stage=bad plugin_timestamp=t1`,
		`level=WARN msg="big line" stage=bad body=bbbb`,
		`level=WARN msg="at keys" stage=bad plugin_@level=1 plugin_@message=m plugin_@timestamp=yesterday plugin_timestamp=t2`,
		`level=WARN msg="big slog line" stage=bad body=ssss`,
		`level=INFO msg=6 stage=bad`,
		`level=INFO msg=7 stage=bad`,
		`level=WARN msg="disk almost full" stage=bad plugin_level=WARNING`,
		`level=ERROR msg="cannot open db" stage=bad plugin_level=err`,
		`level=INFO msg="upper case info" stage=bad`,
	} {
		if !contains(logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(logs.String(), `\"@message\":\"spaced\"`) || !contains(logs.String(), `level=INFO msg=spaced stage=bad`) {
		t.Errorf("a JSON line with leading white space not logged once, as an entry")
	}
	for _, l := range strings.Split(logs.String(), "\n") {
		if len(l) > maxLogLine {
			t.Errorf("a log line of %d bytes: %.200s", len(l), l)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%.20000s", logs.String())
	}
	if _, err := check(st, "pass", 5*time.Second); err != nil {
		t.Fatalf("the stage after the bad lines: %v", err)
	}
}

// TestStaleSocketDirsSwept: the socket directory of a host whose process
// is gone (a gateway killed with SIGKILL) is removed when a new host makes
// its own; a live process's, and one of another naming, stay.
func TestStaleSocketDirsSwept(t *testing.T) {
	parent := shortTempDir(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(parent, fmt.Sprintf("portcullis-plugins-%d-123", dead.Process.Pid))
	live := filepath.Join(parent, fmt.Sprintf("portcullis-plugins-%d-456", os.Getppid()))
	other := filepath.Join(parent, "portcullis-plugins-789")
	for _, d := range []string{stale, live, other} {
		if err := os.MkdirAll(filepath.Join(d, "plugin-dir1"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := newHost(t, Options{SocketDir: parent})
	mustLoad(t, h, Spec{Name: "b", Plugin: helloBin(t)})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the dead host's directory is still there: %v", err)
	}
	for _, d := range []string{live, other, h.SocketDir()} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
}

// A plugin whose binary is missing never started: its failed start is its
// error alone, without go-plugin's "plugin failed to exit gracefully"
// warning about a kill that never was (a soak saw it at every reload
// refused for a misspelt plugin path), and the socket directory made for it
// is removed.
func TestMissingBinaryNoKillWarning(t *testing.T) {
	h, logs := newHost(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Load(ctx, []Spec{{Name: "m", Plugin: "/nonexistent/plugin"}}); err == nil {
		t.Fatal("Load of a missing binary succeeded")
	}
	if s := logs.String(); strings.Contains(s, "exit gracefully") {
		t.Errorf("a plugin that never started was logged as being killed:\n%s", s)
	}
	if dir := h.SocketDir(); dir != "" {
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("socket directory keeps %d entries", len(left))
		}
	}
}
