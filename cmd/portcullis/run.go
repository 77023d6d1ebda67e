package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/portcullis-mta/portcullis/core/daemon"
)

func init() {
	register(&command{name: "run", summary: "run the gateway (SIGHUP reloads, SIGTERM drains and exits)", run: runGateway})
}

// runHooks lets the lead plug delivery, the plugin host and metrics in
// (each as a daemon.Service, the pipeline as a factory) without touching
// this file: files that provide them append here in init.
var runHooks []func(d *daemon.Daemon) error

// runGateway is `portcullis run [-c FILE]`.
func runGateway(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", stderr)
	path := addConfigFlag(fs)
	if st := parseFlags(fs, args); st >= 0 {
		return st
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "portcullis run: unexpected arguments")
		return exitUsage
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		printConfigError(stderr, err)
		return exitFailed
	}
	logger, err := daemon.NewLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "portcullis run:", err)
		return exitFailed
	}
	// Code that logs through slog's default, as the bayes stage learning
	// in this process does, writes in log.format too, not in Go's own.
	slog.SetDefault(logger)
	d, err := daemon.New(cfg, logger)
	if err != nil {
		reportStartError(stderr, logger, cfg, *path, err)
		return exitFailed
	}
	for _, hook := range runHooks {
		if err := hook(d); err != nil {
			reportStartError(stderr, logger, cfg, *path, err)
			return exitFailed
		}
	}
	// Signals are caught before the listeners open, so that a SIGTERM
	// right after start still drains instead of killing.
	hup, stop := notifySignals()
	defer signal.Stop(hup)
	defer signal.Stop(stop)
	if err := d.Start(context.Background()); err != nil {
		reportStartError(stderr, logger, cfg, *path, err)
		_ = d.Shutdown(context.Background())
		return exitFailed
	}
	sig := waitForStop(hup, stop, func() {
		if *path == "" {
			logger.Warn("SIGHUP: running on the built-in config, nothing to reload")
			return
		}
		_ = d.Reload(*path) // a bad file is logged and refused
	})
	// The grace in force: a reload may have changed it.
	grace := d.Config().Limits.ShutdownGrace.D()
	logger.Info("signal: draining", "signal", sig.String(), "grace", grace.String())
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	go func() {
		// A second SIGTERM or SIGINT: stop waiting for sessions. A SIGHUP
		// now waits in hup, unread: there is nothing left to reload.
		if sig, ok := <-stop; ok {
			logger.Warn("signal again: closing sessions now", "signal", sig.String())
			cancel()
		}
	}()
	if err := d.Shutdown(ctx); err != nil {
		logger.Warn("shutdown", "err", err)
	}
	return exitOK
}

// notifySignals catches the daemon's signals on two channels. SIGHUP has a
// buffer of one: SIGHUPs that arrive while a reload runs coalesce into one
// more reload, which reads the files as they are by then (the last state
// wins). SIGTERM and SIGINT have their own channel, so that a burst of
// SIGHUPs can never fill it and make the runtime drop a stop signal
// (signal.Notify does not block on a full channel).
func notifySignals() (hup, stop chan os.Signal) {
	hup = make(chan os.Signal, 1)
	stop = make(chan os.Signal, 2) // the first and the second (close sessions now)
	signal.Notify(hup, syscall.SIGHUP)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	return hup, stop
}

// waitForStop runs reload for each (coalesced) SIGHUP, one at a time, until
// SIGTERM or SIGINT, which it returns. A stop signal pending together with
// a SIGHUP wins: the daemon is going away, a reload would only delay it.
func waitForStop(hup, stop <-chan os.Signal, reload func()) os.Signal {
	for {
		select {
		case sig := <-stop:
			return sig
		case <-hup:
			select {
			case sig := <-stop:
				return sig
			default:
			}
			reload()
		}
	}
}
