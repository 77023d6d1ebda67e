package pluginhost

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
)

// startTimeout bounds a start (handshake, Info, Configure) when the
// caller's context has no deadline of its own. A variable for tests.
var startTimeout = 30 * time.Second

// killGrace bounds a stop of a plugin process: go-plugin's Kill asks the
// plugin to shut down with a call that has no deadline of its own, so on a
// process that cannot answer (stopped, frozen by its cgroup, a server
// thread stuck) it would wait for ever, and with it the restart of a hung
// plugin, a Reload and Close. Past killGrace the process is killed.
const killGrace = 5 * time.Second

// proc is one running plugin process serving one stage.
type proc struct {
	client  *plugin.Client
	runner  *procRunner
	rpc     hostrpc.Client
	info    sdk.Info
	pid     int
	started time.Time

	timeouts atomic.Int64 // calls in a row that timed out
}

// kill stops the process (gracefully first, as go-plugin does, for at
// most killGrace) and removes its sockets.
func (p *proc) kill() {
	t := time.AfterFunc(killGrace, func() { _ = p.runner.Kill(context.Background()) })
	defer t.Stop()
	p.client.Kill()
}

// argv is the command line of spec's plugin.
func (h *Host) argv(sp Spec) ([]string, error) {
	if h.isBuiltin(sp.Plugin) {
		self := h.o.Self
		if self == "" {
			return nil, fmt.Errorf("built-in plugin %q needs the portcullis binary (Options.Self)", sp.Plugin)
		}
		return []string{self, "plugin", sp.Plugin}, nil
	}
	path := sp.Plugin
	if !filepath.IsAbs(path) && sp.Env.ConfigDir != "" {
		path = filepath.Join(sp.Env.ConfigDir, path)
	}
	return []string{path}, nil
}

func (h *Host) isBuiltin(name string) bool {
	return h.o.IsBuiltin != nil && h.o.IsBuiltin(name)
}

// start runs spec's plugin, checks it and configures it.
func (h *Host) start(ctx context.Context, sp Spec) (*proc, error) {
	return h.run(ctx, sp, true)
}

// run runs spec's plugin and checks it, and configures it if configure.
func (h *Host) run(ctx context.Context, sp Spec, configure bool) (*proc, error) {
	argv, err := h.argv(sp)
	if err != nil {
		return nil, err
	}
	timeout := startTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var pr atomic.Pointer[procRunner]
	c := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  hostrpc.Handshake(),
		Plugins:          hostrpc.Plugins(),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		RunnerFunc: func(_ hclog.Logger, spec *exec.Cmd, sock string) (runner.Runner, error) {
			r, err := newRunner(spec, argv, sock)
			if err != nil {
				return nil, err
			}
			pr.Store(r)
			return r, nil
		},
		SkipHostEnv:      true, // pluginEnv passes what a plugin needs of it
		AutoMTLS:         h.o.AutoMTLS,
		GRPCDialOptions:  dialOptions(),
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: h.dir},
		StartTimeout:     timeout,
		Logger:           hclogFor(h.o.Logger, sp.Name, filepath.Base(argv[0])),
		// The process's own stderr (a panic trace) and, once sdk.Serve
		// runs, what the stage prints to os.Stdout and os.Stderr, which
		// go-plugin forwards over the connection.
		Stderr:     &stderrWriter{l: h.o.Logger.With("stage", sp.Name)},
		SyncStderr: &stderrWriter{l: h.o.Logger.With("stage", sp.Name)},
		SyncStdout: &stderrWriter{l: h.o.Logger.With("stage", sp.Name), stream: "stdout"},
	})
	// go-plugin waits for the handshake for StartTimeout whatever ctx
	// does: a stop (Close, Reload) during the start of a plugin that hangs
	// before its handshake would wait that long. Killing the process ends
	// the wait.
	cancelled := context.AfterFunc(ctx, func() {
		if r := pr.Load(); r != nil {
			_ = r.Kill(context.Background())
		}
	})
	p, err := h.handshake(ctx, c, sp, configure)
	if r := pr.Load(); err != nil && r != nil {
		if v := r.protocol(); v != 0 && v != sdk.ProtocolVersion {
			// go-plugin says "incompatible API version", which does not
			// tell an admin what to do.
			err = fmt.Errorf("starting plugin %s: it speaks plugin protocol %d, this gateway %d: build it against this gateway's SDK (github.com/portcullis-mta/portcullis/sdk)",
				sp.Plugin, v, sdk.ProtocolVersion)
		}
	}
	if !cancelled() && err == nil {
		err = fmt.Errorf("starting plugin %s: %w", sp.Plugin, context.Cause(ctx))
	}
	if err != nil {
		// Bounded as proc.kill is: a process stuck in a Configure that
		// overran its deadline may not answer go-plugin's shutdown call.
		t := time.AfterFunc(killGrace, func() {
			if r := pr.Load(); r != nil {
				_ = r.Kill(context.Background())
			}
		})
		c.Kill()
		t.Stop()
		if r := pr.Load(); r != nil && r.PID() == 0 && r.sock != "" {
			// Nothing started, so go-plugin's Kill did nothing, not even
			// remove the socket directory it made for the process.
			_ = os.RemoveAll(r.sock)
		}
		return nil, err
	}
	p.runner = pr.Load()
	p.pid = p.runner.PID()
	h.o.Logger.Info("plugin started", "stage", sp.Name, "plugin", sp.Plugin,
		"pid", p.pid, "name", p.info.Name, "version", p.info.Version)
	return p, nil
}

func (h *Host) handshake(ctx context.Context, c *plugin.Client, sp Spec, configure bool) (*proc, error) {
	cp, err := c.Client()
	if err != nil {
		return nil, fmt.Errorf("starting plugin %s: %w", sp.Plugin, err)
	}
	rpc, err := hostrpc.Dispense(cp)
	if err != nil {
		return nil, err
	}
	info, err := rpc.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", sp.Plugin, err)
	}
	if err := checkInfo(info); err != nil {
		return nil, fmt.Errorf("plugin %s: %w", sp.Plugin, err)
	}
	if configure {
		// A Configure that times out or is cut (ErrConfigureTimeout)
		// leaves a process in an unknown state: run kills it.
		if err := callConfigure(ctx, rpc, sp); err != nil {
			return nil, err
		}
	}
	return &proc{client: c, rpc: rpc, info: info, started: time.Now()}, nil
}

// maxResponseSize bounds one message from a plugin (hostrpc.DialOptions
// allows 64 MiB each way, which data-phase requests need). A result is a
// few short strings; the pipeline refuses one of more than 1 MiB, and
// without this bound a broken plugin would make the host allocate 64 MiB
// per call first, for every session calling it at once.
const maxResponseSize = 4 << 20

// dialOptions are hostrpc's with the bound on responses.
func dialOptions() []grpc.DialOption {
	return append(hostrpc.DialOptions(), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxResponseSize)))
}

// checkInfo checks a plugin's capabilities: the phases it asks for must be
// ones this host calls stages at (sdk.Info.Validate, which plugintest
// applies too).
func checkInfo(i sdk.Info) error { return i.Validate() }
