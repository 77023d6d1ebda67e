package main

import (
	"context"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/daemon"
	"github.com/portcullis-mta/portcullis/core/delivery"
	"github.com/portcullis-mta/portcullis/core/dkimsign"
	"github.com/portcullis-mta/portcullis/core/verify"
)

// Delivery runs inside `portcullis run` as a daemon.Service over the
// daemon's queue, signing with the dkim.sign keys (reloaded on SIGHUP; a
// key that does not load refuses the reload). Recipient verification
// (routes[].verify_recipients) probes through it.
func init() {
	runHooks = append(runHooks, func(d *daemon.Daemon) error {
		logger := d.Logger() // follows log.level across reloads
		signer := &dkimsign.Live{}
		if err := signer.Load(d.Config().DKIM); err != nil {
			return err
		}
		m, err := delivery.New(delivery.Deps{Config: d.Config(), Queue: d.Queue(), Logger: logger, Signer: signer})
		if err != nil {
			return err
		}
		d.AddService(dkimService{signer}) // before delivery: a bad key refuses the reload first
		d.AddService(m)
		// After delivery, so that its Reload sees the routes delivery
		// probes with now.
		v := verify.New(verify.Options{Prober: m, Logger: logger})
		d.Verifier = v
		d.AddService(v)
		return nil
	})
}

// dkimService reloads the signing keys with the config.
type dkimService struct{ live *dkimsign.Live }

func (dkimService) Start(context.Context) error       { return nil }
func (s dkimService) Reload(cfg *config.Config) error { return s.live.Load(cfg.DKIM) }
func (dkimService) Stop(context.Context) error        { return nil }
