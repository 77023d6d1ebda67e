// Package daemon wires the gateway together: the queue and quarantine
// stores, the relay policy, AUTH, the pipeline runner and the SMTP server,
// plus whatever services (delivery, plugin host, metrics) the caller plugs
// in. It owns start, reload (SIGHUP) and graceful shutdown (SIGTERM).
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-mta/portcullis/core/auth"
	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/queue"
	"github.com/portcullis-mta/portcullis/core/smtpd"
)

// Service is a part of the gateway with its own life cycle.
type Service interface {
	Start(ctx context.Context) error
	// Reload applies a new config; an error refuses it (the old one stays).
	Reload(cfg *config.Config) error
	Stop(ctx context.Context) error
}

// PipelineFactory builds the pipeline runner for a config. close releases
// it (plugin processes); it is called once no new session can use it. An
// error refuses the config.
type PipelineFactory func(cfg *config.Config) (r pipeline.Runner, close func(), err error)

// Daemon is the running gateway.
type Daemon struct {
	// Pipeline builds the runner at Start and at every Reload; nil: no stages.
	Pipeline PipelineFactory
	// Learn trains the classifier on messages a rule marked learn_spam or
	// learn_ham (smtpd.Deps.Learn); nil: those actions only tag. Set it
	// before Start.
	Learn smtpd.LearnFunc
	// Verifier checks recipients with the servers behind the gateway
	// (smtpd.Deps.Verifier, core/verify); nil: no route verifies. Set it
	// before Start.
	Verifier smtpd.Verifier

	log        *slog.Logger
	queue      *queue.Dir
	quarantine *queue.Dir
	smtp       *smtpd.Server
	lockout    *auth.Lockout // kept across reloads (SetLimits): a reload must not forgive a guesser

	mu        sync.Mutex
	cfg       *config.Config
	boot      *config.Config // the config at start: what restart-only settings still are
	deps      smtpd.Deps
	closePipe func()
	services  []Service
	started   []Service
	spoolLock *os.File // held while the daemon runs (spoollock.go)
}

// storeError is a store that would not open, named by its config key.
// The store's own errors begin with "queue: ", which after the daemon's
// prefix said it twice ("daemon: queue: queue: mkdir ...").
type storeError struct {
	key string
	err error
}

func (e *storeError) Error() string {
	return "daemon: " + e.key + ": " + strings.TrimPrefix(e.err.Error(), "queue: ")
}

func (e *storeError) Unwrap() error { return e.err }

// New opens the stores and builds policy, AUTH and the SMTP server of cfg.
func New(cfg *config.Config, logger *slog.Logger) (*Daemon, error) {
	if logger == nil {
		logger = slog.Default()
	}
	lock := cfg.Limits.AuthLockout.D()
	d := &Daemon{log: logger, cfg: cfg, boot: cfg, lockout: auth.NewLockout(cfg.Limits.AuthFailures, lock, lock, nil)}
	var err error
	// The daemon delivers what it queues, so small messages wait in the
	// intake log rather than a file each (core/queue/intake.go).
	// The spool lock first, so that a second daemon touches nothing (its
	// Open would recover and lay out intake segments); a spool that does
	// not exist yet has no daemon, and is locked once Open made it.
	if _, err := os.Stat(cfg.Queue.Dir); err == nil {
		if d.spoolLock, err = lockSpool(cfg.Queue.Dir); err != nil {
			return nil, err
		}
	}
	d.queue, err = queue.Open(cfg.Queue.Dir, queue.Options{Logger: logger.With("store", "queue"), Intake: true, Events: true})
	if err != nil {
		d.closeStores()
		return nil, &storeError{"queue.dir", err}
	}
	if d.spoolLock == nil {
		if d.spoolLock, err = lockSpool(cfg.Queue.Dir); err != nil {
			d.closeStores()
			return nil, err
		}
	}
	d.quarantine, err = queue.Open(cfg.Queue.Quarantine, queue.Options{Logger: logger.With("store", "quarantine"), Events: true})
	if err != nil {
		d.queue.Close()
		return nil, &storeError{"queue.quarantine_dir", err}
	}
	deps, err := d.buildDeps(cfg, nil)
	if err == nil {
		d.smtp, err = smtpd.New(deps)
	}
	if err != nil {
		d.closeStores()
		return nil, err
	}
	d.deps = deps
	return d, nil
}

// buildDeps makes what the SMTP server needs for cfg.
func (d *Daemon) buildDeps(cfg *config.Config, runner pipeline.Runner) (smtpd.Deps, error) {
	pol, err := newPolicy(cfg, d.log)
	if err != nil {
		return smtpd.Deps{}, err
	}
	au, err := newAuth(cfg, d.log, d.lockout)
	if err != nil {
		return smtpd.Deps{}, err
	}
	return smtpd.Deps{
		Config: cfg, Queue: d.queue, Quarantine: d.quarantine,
		Policy: pol, Auth: au, Pipeline: runner, Resolver: smtpd.NewResolver(cfg.DNS),
		Logger: d.log, Now: time.Now, Learn: d.Learn, Verifier: d.Verifier,
	}, nil
}

// AddService plugs in a service; call before Start.
func (d *Daemon) AddService(s Service) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.services = append(d.services, s)
}

// Queue and Quarantine are the stores (for delivery and the CLI-facing services).
func (d *Daemon) Queue() queue.Store      { return d.queue }
func (d *Daemon) Quarantine() queue.Store { return d.quarantine }

// SMTP is the SMTP server (its Addr tells where listeners are bound).
func (d *Daemon) SMTP() *smtpd.Server { return d.smtp }

// Logger is the daemon's logger, for the services plugged in, so that
// their lines follow log.level across reloads.
func (d *Daemon) Logger() *slog.Logger { return d.log }

// Config is the config in force.
func (d *Daemon) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Start builds the pipeline, starts the services, then the listeners (so
// that nothing is accepted before everything behind it runs).
func (d *Daemon) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Pipeline != nil {
		r, closeFn, err := d.Pipeline(d.cfg)
		if err != nil {
			return fmt.Errorf("daemon: pipeline: %w", err)
		}
		d.closePipe = closeFn
		d.deps.Pipeline = r
	}
	if d.Pipeline != nil || d.Learn != nil || d.Verifier != nil {
		d.deps.Learn, d.deps.Verifier = d.Learn, d.Verifier
		if err := d.smtp.Reload(d.deps); err != nil {
			return err
		}
	}
	for _, s := range d.services {
		if err := s.Start(ctx); err != nil {
			return fmt.Errorf("daemon: starting service: %w", err)
		}
		d.started = append(d.started, s)
	}
	if err := d.smtp.Start(); err != nil {
		return err
	}
	d.log.Info("started", "hostname", d.cfg.Hostname)
	return nil
}
