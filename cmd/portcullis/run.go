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
		logger.Error("cannot start", "err", err)
		return exitFailed
	}
	for _, hook := range runHooks {
		if err := hook(d); err != nil {
			logger.Error("cannot start", "err", err)
			return exitFailed
		}
	}
	// Signals are caught before the listeners open, so that a SIGTERM
	// right after start still drains instead of killing.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if err := d.Start(context.Background()); err != nil {
		logger.Error("cannot start", "err", err)
		_ = d.Shutdown(context.Background())
		return exitFailed
	}
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			if *path == "" {
				logger.Warn("SIGHUP: running on the built-in config, nothing to reload")
				continue
			}
			_ = d.Reload(*path) // a bad file is logged and refused
			continue
		}
		logger.Info("signal: draining", "signal", sig.String(), "grace", cfg.Limits.ShutdownGrace.D().String())
		break
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.Config().Limits.ShutdownGrace.D())
	defer cancel()
	go func() {
		// A second SIGTERM or SIGINT: stop waiting for sessions.
		for sig := range sigs {
			if sig != syscall.SIGHUP {
				logger.Warn("signal again: closing sessions now", "signal", sig.String())
				cancel()
				return
			}
		}
	}()
	if err := d.Shutdown(ctx); err != nil {
		logger.Warn("shutdown", "err", err)
	}
	return exitOK
}
