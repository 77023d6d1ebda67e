package main

import (
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/delivery"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// `queue bounce ID` fails the message's pending recipients now and queues
// the DSN the bounce policy calls for (core/delivery.Bounce).
func init() {
	bounceHook = func(cfg *config.Config, store queue.Store, id string) error {
		return delivery.Bounce(cfg, store, id, time.Now())
	}
}
