package main

import (
	"context"
	"os"
	"runtime/pprof"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/daemon"
)

// PORTCULLIS_CPUPROFILE=FILE makes `portcullis run` write a Go CPU profile
// of the daemon to FILE until it stops (go tool pprof FILE): for measuring
// where a loaded gateway spends its time.
func init() {
	runHooks = append(runHooks, func(d *daemon.Daemon) error {
		path := os.Getenv("PORTCULLIS_CPUPROFILE")
		if path == "" {
			return nil
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		d.AddService(profileService{f})
		return nil
	})
}

type profileService struct{ f *os.File }

func (profileService) Start(context.Context) error { return nil }
func (profileService) Reload(*config.Config) error { return nil }
func (s profileService) Stop(context.Context) error {
	pprof.StopCPUProfile()
	return s.f.Close()
}
