package main

import (
	"context"
	"os"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/daemon"
	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/pluginhost"
)

// The stages of the rule files run inside `portcullis run`: one plugin host
// for the daemon's life, whose stages are reloaded (unchanged ones keep their
// processes) at every SIGHUP; a reload whose rules or plugins fail is
// refused and the old pipeline stays.
func init() {
	runHooks = append(runHooks, func(d *daemon.Daemon) error {
		logger := d.Logger() // follows log.level across reloads
		self, err := os.Executable()
		if err != nil {
			return err
		}
		host := pluginhost.New(pluginhost.Options{Self: self, IsBuiltin: isBuiltin, Logger: logger})
		d.Pipeline = func(cfg *config.Config) (pipeline.Runner, func(), error) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			eng, err := loadPipeline(ctx, host, cfg, logger)
			if err != nil {
				return nil, nil, err
			}
			return eng, nil, nil // the host outlives each runner; it stops with the daemon
		}
		d.AddService(hostService{host})
		return nil
	})
}

// hostService stops the plugins when the daemon stops.
type hostService struct{ host *pluginhost.Host }

func (hostService) Start(context.Context) error  { return nil }
func (hostService) Reload(*config.Config) error  { return nil }
func (s hostService) Stop(context.Context) error { s.host.Close(); return nil }
