package greylist

import (
	"fmt"
	"time"

	"github.com/portcullis-mta/portcullis/sdk/cfgval"
)

type config struct {
	delay, retryWindow, passLifetime time.Duration
	autoAllow                        int
	v4Prefix, v6Prefix               int
}

var configKeys = []string{"delay", "retry_window", "pass_lifetime", "auto_allow_after", "ipv4_prefix", "ipv6_prefix"}

// parseConfig reads the config map; keys are read in sorted order, so
// that of two mistakes the same one is reported each time.
func parseConfig(raw map[string]any) (config, error) {
	cfg := config{delay: 5 * time.Minute, retryWindow: 48 * time.Hour, passLifetime: 35 * 24 * time.Hour,
		autoAllow: 5, v4Prefix: 24, v6Prefix: 64}
	err := cfgval.Each(raw, func(k string, v any) (err error) {
		key := cfgval.Key(k)
		switch k {
		case "delay":
			cfg.delay, err = key.Duration(v)
		case "retry_window":
			cfg.retryWindow, err = key.Duration(v)
		case "pass_lifetime":
			cfg.passLifetime, err = key.Duration(v)
		case "auto_allow_after":
			cfg.autoAllow, err = key.Whole(v, 0, 1<<20)
		case "ipv4_prefix":
			cfg.v4Prefix, err = key.Whole(v, 8, 32)
		case "ipv6_prefix":
			cfg.v6Prefix, err = key.Whole(v, 16, 128)
		default:
			err = cfgval.UnknownKey(k, configKeys)
		}
		return err
	})
	if err != nil {
		return config{}, err
	}
	if cfg.retryWindow <= 0 || cfg.passLifetime <= 0 {
		return config{}, fmt.Errorf("retry_window and pass_lifetime must be positive")
	}
	return cfg, nil
}
