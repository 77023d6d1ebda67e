package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin/runner"

	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
)

// procRunner runs a plugin as a child process. go-plugin has the same in an
// internal package; we need our own to use ClientConfig.RunnerFunc, which
// is what makes go-plugin keep the host's broker sockets in our socket
// directory too (with Cmd they go to $TMPDIR) and remove them at Kill.
type procRunner struct {
	cmd    *exec.Cmd
	stdout *firstLine
	stderr *stderrFilter
	sock   string // go-plugin's socket directory for this process

	mu     sync.Mutex // Kill may come from another goroutine during Start
	pid    int
	killed bool // Kill came first: Start kills what it starts
	reaped bool // Wait returned: the process group ID is free for reuse

	exited chan struct{} // closed when Wait has reaped the process
}

var _ runner.Runner = (*procRunner)(nil)

// newRunner runs argv with the environment go-plugin prepared in spec
// (ClientConfig.SkipHostEnv keeps the host's out of it) and what pluginEnv
// lets through of the host's.
func newRunner(spec *exec.Cmd, argv []string, sock string) (*procRunner, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = pluginEnv(spec.Env, os.Environ(), os.Getpid())
	ownGroup(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	return &procRunner{cmd: cmd, stdout: &firstLine{ReadCloser: stdout}, stderr: newStderrFilter(stderr), sock: sock,
		exited: make(chan struct{})}, nil
}

// pluginEnv is the plugin's environment: the variables of the host's
// environment (host) that keptEnv names, go-plugin's (base), the host's PID
// (a plugin whose host is gone exits), and GOMAXPROCS=1 unless the admin
// set GOMAXPROCS. A plugin process is idle between short calls; with one P
// the Go scheduler stops waking and parking threads across cores for each
// gRPC call (measured here: plugin CPU per message with 8 stages fell from
// 1.65-2.14 ms to 1.17-1.27 ms). Heavy stages still run calls concurrently.
func pluginEnv(base, host []string, hostPID int) []string {
	env := make([]string, 0, len(base)+len(keptEnv)+2)
	extra := extraEnv(host)
	for _, kv := range host {
		if keepEnv(kv) || slices.Contains(extra, envName(kv)) {
			env = append(env, kv)
		}
	}
	env = append(env, base...)
	env = append(env, hostrpc.HostPIDEnv+"="+strconv.Itoa(hostPID))
	for _, kv := range env {
		if strings.HasPrefix(kv, "GOMAXPROCS=") {
			return env
		}
	}
	return append(env, "GOMAXPROCS=1")
}

// keptEnv names the variables of the host's environment a plugin gets, as
// Postfix's import_environment does for its daemons: what a program needs
// to find commands, tell the time, pick a locale and a temporary
// directory, verify TLS peers, and the Go runtime's knobs. The rest (a
// service manager's credentials, tokens an admin exported) stays in the
// gateway: plugins, a third party's among them, get their settings from
// their stage's config.
var keptEnv = []string{"PATH", "HOME", "TZ", "LANG", "LANGUAGE", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR",
	"GOMAXPROCS", "GOMEMLIMIT", "GOGC", "GODEBUG", "GOTRACEBACK"}

func keepEnv(kv string) bool {
	n := envName(kv)
	return n != "" && (strings.HasPrefix(n, "LC_") || slices.Contains(keptEnv, n))
}

// PluginEnvVar names more variables of the gateway's environment that
// plugins get, separated by commas or spaces: what an external scanner
// run by the antivirus stage needs (a licence path, LD_LIBRARY_PATH), or a
// proxy for a third-party stage, as Postfix's import_environment is
// extended.
const PluginEnvVar = "PORTCULLIS_PLUGIN_ENV"

// extraEnv is the list PluginEnvVar gives in host.
func extraEnv(host []string) []string {
	for _, kv := range host {
		if v, ok := strings.CutPrefix(kv, PluginEnvVar+"="); ok {
			return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
		}
	}
	return nil
}

// envName is the variable name of kv ("NAME=value"), "" if it has none.
func envName(kv string) string {
	n, _, ok := strings.Cut(kv, "=")
	if !ok {
		return ""
	}
	return n
}

func (r *procRunner) Start(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.pid = r.cmd.Process.Pid
	if r.killed {
		// Started after all, so that go-plugin's pipes and goroutines
		// end as for any process that exits before its handshake.
		_ = killGroup(r.cmd.Process)
	}
	return nil
}

func (r *procRunner) Wait(context.Context) error {
	err := r.cmd.Wait()
	r.mu.Lock()
	if !r.reaped {
		reapGroup(r.pid) // helpers it left in its group go with it
		close(r.exited)
	}
	r.reaped = true
	r.mu.Unlock()
	return err
}

// Kill sends SIGKILL to the plugin and what it started in its process
// group. It is safe to call from any goroutine, at any time: before Start,
// it makes Start kill the process it starts.
func (r *procRunner) Kill(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.killed = true
	if r.cmd.Process == nil || r.reaped {
		return nil
	}
	err := killGroup(r.cmd.Process)
	// go-plugin reaps the plugin only once its stdout and stderr are
	// closed; a helper that left the process group (setsid) and kept
	// them would hold a dead plugin unreaped, its stage down, and the
	// gateway's stop, for as long as it lives. Our ends closed, the
	// readers return and the plugin is reaped.
	_ = r.stdout.Close()
	_ = r.stderr.Close()
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

func (r *procRunner) Stdout() io.ReadCloser { return r.stdout }
func (r *procRunner) Stderr() io.ReadCloser { return r.stderr }
func (r *procRunner) Name() string          { return r.cmd.Path }

// ID is the process's ID, "" before Start: go-plugin's Kill reads "" as
// nothing to kill, where "0" had it warn that a plugin that never started
// (a missing binary) "failed to exit gracefully".
func (r *procRunner) ID() string {
	if pid := r.PID(); pid != 0 {
		return strconv.Itoa(pid)
	}
	return ""
}

// PID is the process's ID, 0 before Start.
func (r *procRunner) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pid
}

// Diagnose explains a handshake that failed. A plugin that exited says
// why on its stderr ("cannot open licence file"): its last lines and its
// exit status come first, the generic hint last.
func (r *procRunner) Diagnose(context.Context) string {
	var b strings.Builder
	select {
	case <-r.exited:
	case <-time.After(diagnoseWait):
	}
	r.mu.Lock()
	state := r.cmd.ProcessState
	if !r.reaped {
		state = nil
	}
	r.mu.Unlock()
	fmt.Fprintf(&b, "%s did not complete the plugin handshake", r.cmd.Path)
	if state != nil {
		fmt.Fprintf(&b, " (%s)", state)
	}
	if lines := r.stderr.lastLines(diagnoseWait); len(lines) > 0 {
		fmt.Fprintf(&b, "; its last output: %q", strings.Join(lines, " | "))
	}
	if line := r.stdout.line(); line != "" {
		// go-plugin says "Unrecognized remote plugin message" and no
		// more: the usual cause is a plugin's own print before Serve.
		fmt.Fprintf(&b, ": it wrote %q to stdout, where the handshake goes: a plugin writes nothing to stdout before sdk.Serve (log with slog, or to stderr)", line)
		return b.String()
	}
	b.WriteString(": is it a Portcullis plugin built for this system?")
	return b.String()
}

// protocol is the plugin protocol version the plugin's handshake line
// gave (go-plugin's "CORE|APP|network|address|protocol"), 0 if none.
func (r *procRunner) protocol() int {
	f := strings.Split(r.stdout.line(), "|")
	if len(f) < 4 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// firstLine passes a plugin's stdout to go-plugin and keeps the start of
// its first line: the handshake, or what a plugin printed in its place.
type firstLine struct {
	io.ReadCloser
	mu   sync.Mutex
	buf  []byte
	done bool
}

// maxFirstLine bounds what firstLine keeps: enough for a handshake's
// versions or a stray message, not a whole mTLS certificate.
const maxFirstLine = 200

func (f *firstLine) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range p[:n] {
		if f.done {
			break
		}
		if c == '\n' || len(f.buf) == maxFirstLine {
			f.done = true
			break
		}
		f.buf = append(f.buf, c)
	}
	return n, err
}

func (f *firstLine) line() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.TrimSpace(string(f.buf))
}

// diagnoseWait is how long Diagnose waits for a plugin that failed its
// handshake to exit and finish writing.
const diagnoseWait = 500 * time.Millisecond

func (r *procRunner) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (r *procRunner) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }
