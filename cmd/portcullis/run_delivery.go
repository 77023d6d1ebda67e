package main

import (
	"os"

	"github.com/portcullis-mta/portcullis/core/daemon"
	"github.com/portcullis-mta/portcullis/core/delivery"
)

// Delivery runs inside `portcullis run` as a daemon.Service over the
// daemon's queue.
func init() {
	runHooks = append(runHooks, func(d *daemon.Daemon) error {
		// The same logger run builds (the daemon does not hand its own out).
		logger, err := daemon.NewLogger(d.Config().Log, os.Stderr)
		if err != nil {
			return err
		}
		m, err := delivery.New(delivery.Deps{Config: d.Config(), Queue: d.Queue(), Logger: logger})
		if err != nil {
			return err
		}
		d.AddService(m)
		return nil
	})
}
