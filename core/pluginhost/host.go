// Package pluginhost starts, supervises and stops the plugin processes that
// serve the configured stages (hashicorp/go-plugin over gRPC, the protocol
// of package sdk).
//
// Each stage runs in one process for the whole daemon, shared by every
// SMTP session. A call honours its context's deadline (the pipeline sets
// the stage's timeout); a call that fails because the process died returns
// an error (the pipeline maps it to the stage's on_error) and the host
// restarts the plugin with exponential backoff, so later calls pass through
// it again. A plugin whose calls keep timing out is presumed hung and
// restarted the same way (Options.WedgedAfter). A Configure that times
// out or whose call is cut (ErrConfigureTimeout, at a load, a reload, the
// rollback of a failed reload or a restart) may still apply its config
// later: that process is killed, and a running stage's is restarted and
// configured with the stage's committed config. go-plugin keeps handing back a dead client after a crash, which
// is why every failed call looks at Exited.
//
// Sockets live in a private 0700 directory of the host, one subdirectory
// per process, removed when the process is stopped and at Close.
//
// AutoMTLS is off by default. Plugins are children of the gateway on the
// same host, reached over Unix sockets in that 0700 directory: only the
// gateway's own user (or root) can connect, and either can already read
// the gateway's memory, keys and spool, so mutual TLS authenticates no one
// who could not do worse anyway. It costs a certificate pair per start
// (measured here: several times the start time) and TLS on every call
// (+22% CPU per call measured on a quiet machine). Options.AutoMTLS is
// there for sites whose policy demands it.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// Spec is one configured stage.
type Spec struct {
	Name   string         // stage name
	Plugin string         // built-in name or path (relative paths from Env.ConfigDir)
	Config map[string]any // the stage's config: map, passed to the plugin's Configure
	Env    sdk.Env        // StageName is set from Name
}

// Options configure a Host.
type Options struct {
	Self       string                 // the portcullis binary; built-ins run as `Self plugin NAME`
	IsBuiltin  func(name string) bool // whether Spec.Plugin names a built-in; nil: none is
	SocketDir  string                 // parent of the host's private socket directory; "" for $TMPDIR
	Logger     *slog.Logger           // plugin logs and stderr go here with stage=<name>
	AutoMTLS   bool                   // mTLS between host and plugins; off by default (see package doc)
	MinBackoff time.Duration          // first restart delay after a crash; default 100ms
	MaxBackoff time.Duration          // cap of the doubling delay; default 30s

	// WedgedAfter is how many calls in a row may time out before the
	// plugin is presumed hung (a deadlock does not kill a process) and
	// restarted; default 50, negative never. A stage slowed by a slow
	// upstream is restarted too, which costs a start and nothing else:
	// its calls were timing out anyway.
	WedgedAfter int
}

// ErrClosed is returned by calls on a stage that was stopped by Reload or Close.
var ErrClosed = errors.New("pluginhost: stage stopped")

// Host runs the plugin processes of a set of stages.
type Host struct {
	o Options

	load    sync.Mutex // serialises Load, Reload and Close
	dir     string     // private socket directory, made at first start
	madeDir string     // o.SocketDir when the host created it
	closed  bool

	retiring sync.WaitGroup // stages a Reload replaced, until their processes stop

	mu     sync.RWMutex
	stages map[string]*Stage
}

// New returns a host with no stages; Load starts them.
func New(o Options) *Host {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.WedgedAfter == 0 {
		o.WedgedAfter = 50
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	return &Host{o: o, stages: map[string]*Stage{}}
}

// Load starts, checks and configures the stages of specs. A failure stops
// what was started and names the stage at fault.
func (h *Host) Load(ctx context.Context, specs []Spec) error {
	return h.Reload(ctx, specs)
}

// Stage returns the running stage called name. After a Reload, look stages
// up again: a stage whose plugin or environment changed is a new *Stage.
func (h *Host) Stage(name string) (*Stage, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	s, ok := h.stages[name]
	return s, ok
}

// Close stops every plugin, each after the calls in flight on it, and
// removes the socket directory.
func (h *Host) Close() {
	h.load.Lock()
	defer h.load.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	h.mu.Lock()
	old := h.stages
	h.stages = map[string]*Stage{}
	h.mu.Unlock()
	stopAll(mapValues(old))
	h.retiring.Wait()
	if h.dir != "" {
		if err := os.RemoveAll(h.dir); err != nil {
			h.o.Logger.Warn("removing plugin socket directory", "dir", h.dir, "error", err)
		}
		if h.madeDir != "" {
			_ = os.Remove(h.madeDir)
		}
	}
}

// SocketDir reports the host's private socket directory ("" before the
// first Load).
func (h *Host) SocketDir() string {
	h.load.Lock()
	defer h.load.Unlock()
	return h.dir
}

// ensureDir makes the private socket directory. Sockets authenticate
// nobody; the 0700 directory is what keeps other users off them.
func (h *Host) ensureDir() error {
	if h.dir != "" {
		return nil
	}
	parent := h.o.SocketDir
	if parent != "" {
		if _, err := os.Stat(parent); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(parent, 0o700); err != nil {
				return fmt.Errorf("plugin socket directory: %w", err)
			}
			h.madeDir = parent
		}
	}
	sweepSocketDirs(parent)
	dir, err := os.MkdirTemp(parent, fmt.Sprintf("%s%d-", socketDirPrefix, os.Getpid()))
	if err != nil {
		return fmt.Errorf("plugin socket directory: %w", err)
	}
	h.dir = dir
	return nil
}

// socketDirPrefix starts the name of a host's socket directory, followed
// by the PID of its process and a random part.
const socketDirPrefix = "portcullis-plugins-"

func sameProcess(a, b Spec) bool {
	return a.Name == b.Name && a.Plugin == b.Plugin && reflect.DeepEqual(a.Env, b.Env)
}

func mapValues(m map[string]*Stage) []*Stage {
	out := make([]*Stage, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	return out
}

func stopAll(stages []*Stage) {
	var wg sync.WaitGroup
	for _, s := range stages {
		wg.Go(s.stop)
	}
	wg.Wait()
}
