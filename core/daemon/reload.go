package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/smtpd"
)

// Reload loads the config at path and applies it: new sessions get the new
// policy, users, pipeline, TLS certificate and AUTH limits; listeners open,
// close or move; running sessions finish on the old ones. Anything invalid
// (an address in use too) refuses the whole reload with a log line and the
// old config stays. The queue directories are fixed until restart.
func (d *Daemon) Reload(path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		d.log.Error("reload refused: config invalid, keeping the old one", "path", path, "err", err)
		return err
	}
	return d.ReloadConfig(cfg)
}

// ReloadConfig is Reload with a loaded config.
//
// Refusal is all or nothing. The pipeline factory and the services apply
// what they are given (the plugin host starts and reconfigures plugins, a
// service loads keys), so when a later step refuses, each of them that
// already took the new config is given the old one again: otherwise a
// "refused" reload would leave plugins running with the new stage configs
// behind the old rules, or new signing keys under the old config.
func (d *Daemon) ReloadConfig(cfg *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var runner pipeline.Runner
	closeNew := func() {}
	if d.Pipeline != nil {
		r, c, err := d.Pipeline(cfg)
		if err != nil {
			d.log.Error("reload refused: pipeline, keeping the old config", "err", err)
			return fmt.Errorf("daemon: pipeline: %w", err)
		}
		runner, closeNew = r, orNop(c)
	}
	deps, err := d.buildDeps(cfg, runner)
	// The SMTP side binds its new listeners first, so that an address in
	// use refuses the reload before any service has taken the new config.
	var next *smtpd.Reloading
	if err == nil {
		next, err = d.smtp.Prepare(deps)
	}
	if err == nil {
		var applied []Service
		if applied, err = d.reloadServices(cfg); err != nil {
			next.Cancel()
			d.rollBackServices(applied)
		}
	}
	if err != nil {
		closeNew()
		d.log.Error("reload refused, keeping the old config", "err", err)
		if runner != nil {
			d.rollBackPipeline()
		}
		return err
	}
	next.Commit()
	old := d.closePipe
	d.warnRestartOnly(d.boot, cfg)
	d.cfg, d.deps, d.closePipe = cfg, deps, closeNew
	lock := cfg.Limits.AuthLockout.D()
	d.lockout.SetLimits(cfg.Limits.AuthFailures, lock, lock)
	setLevel(d.log, cfg.Log.Level)
	d.closeLater(old)
	d.log.Info("reloaded", "path", cfg.Path)
	return nil
}

// closeLater closes a runner that sessions started on may still be using
// once the longest a phase can take has passed.
func (d *Daemon) closeLater(closeFn func()) {
	if closeFn != nil {
		time.AfterFunc(max(d.cfg.Limits.DataTimeout.D(), d.cfg.Limits.CommandTimeout.D()), closeFn)
	}
}

// rollBackPipeline builds the pipeline of the config in force again after
// a refused reload had built (and so applied) the new one, and hands the
// SMTP server the rebuilt runner: the old runner may hold stages that the
// refused one stopped.
func (d *Daemon) rollBackPipeline() {
	r, c, err := d.Pipeline(d.cfg)
	if err == nil {
		deps := d.deps
		deps.Pipeline = r
		if err = d.smtp.Reload(deps); err == nil {
			old := d.closePipe
			d.deps, d.closePipe = deps, orNop(c)
			d.closeLater(old)
			d.log.Info("reload refused: pipeline rolled back to the config in force")
			return
		}
		orNop(c)()
	}
	d.log.Error("reload refused, but the pipeline could not be rolled back: stages may run the new config; fix the files and reload", "err", err)
}

// warnRestartOnly logs each setting of cfg a reload cannot apply, so that
// an admin does not wait for a change that will not happen until a
// restart. boot is the config the daemon started with, whose values those
// settings keep: a reload back to them is no change.
func (d *Daemon) warnRestartOnly(boot, cfg *config.Config) {
	if cfg.Queue.Dir != boot.Queue.Dir || cfg.Queue.Quarantine != boot.Queue.Quarantine {
		d.log.Warn("reload: queue directories change only at restart", "dir", boot.Queue.Dir, "quarantine", boot.Queue.Quarantine)
	}
	if cfg.Queue.Workers != boot.Queue.Workers {
		d.log.Warn("reload: queue.workers changes only at restart", "workers", boot.Queue.Workers)
	}
	if cfg.Log.Format != boot.Log.Format {
		d.log.Warn("reload: log.format changes only at restart", "format", boot.Log.Format)
	}
}

// reloadServices gives cfg to each started service in order; on a refusal
// it returns the services that had already taken it.
func (d *Daemon) reloadServices(cfg *config.Config) ([]Service, error) {
	for i, s := range d.started {
		if err := s.Reload(cfg); err != nil {
			return d.started[:i], fmt.Errorf("service: %w", err)
		}
	}
	return nil, nil
}

// rollBackServices gives the config in force back, in reverse order, to
// the services that took the config of a refused reload.
func (d *Daemon) rollBackServices(applied []Service) {
	for i := len(applied) - 1; i >= 0; i-- {
		if err := applied[i].Reload(d.cfg); err != nil {
			d.log.Error("reload refused, but a service could not be rolled back to the config in force", "service", fmt.Sprintf("%T", applied[i]), "err", err)
		}
	}
	if len(applied) > 0 {
		d.log.Info("reload refused: services rolled back to the config in force", "services", len(applied))
	}
}

func orNop(f func()) func() {
	if f == nil {
		return func() {}
	}
	return f
}

// Shutdown stops accepting, lets sessions finish until ctx is done, then
// stops the services in reverse order and closes the stores. Nothing
// accepted is lost: a message is committed before its 250.
func (d *Daemon) Shutdown(ctx context.Context) error {
	errSMTP := d.smtp.Shutdown(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	if errSMTP != nil {
		errs = append(errs, fmt.Errorf("smtp: %w", errSMTP))
	}
	// Services get their own short grace even when the sessions used it up.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := len(d.started) - 1; i >= 0; i-- {
		if err := d.started[i].Stop(sctx); err != nil {
			errs = append(errs, err)
		}
	}
	if d.closePipe != nil {
		d.closePipe()
		d.closePipe = nil
	}
	d.closeStores()
	d.log.Info("stopped")
	return errors.Join(errs...)
}

func (d *Daemon) closeStores() {
	if d.queue != nil {
		d.queue.Close()
	}
	if d.quarantine != nil {
		d.quarantine.Close()
	}
	if d.spoolLock != nil {
		d.spoolLock.Close()
	}
}
