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

func parseConfig(raw map[string]any) (config, error) {
	cfg := config{delay: 5 * time.Minute, retryWindow: 48 * time.Hour, passLifetime: 35 * 24 * time.Hour,
		autoAllow: 5, v4Prefix: 24, v6Prefix: 64}
	for k, v := range raw {
		var err error
		switch k {
		case "delay":
			cfg.delay, err = cfgval.Duration(v)
		case "retry_window":
			cfg.retryWindow, err = cfgval.Duration(v)
		case "pass_lifetime":
			cfg.passLifetime, err = cfgval.Duration(v)
		case "auto_allow_after":
			cfg.autoAllow, err = cfgval.Whole(v, 0, 1<<20)
		case "ipv4_prefix":
			cfg.v4Prefix, err = cfgval.Whole(v, 8, 32)
		case "ipv6_prefix":
			cfg.v6Prefix, err = cfgval.Whole(v, 16, 128)
		default:
			err = fmt.Errorf("unknown key (want delay, retry_window, pass_lifetime, auto_allow_after, ipv4_prefix, ipv6_prefix)")
		}
		if err != nil {
			return config{}, fmt.Errorf("%s: %v", k, err)
		}
	}
	if cfg.retryWindow <= 0 || cfg.passLifetime <= 0 {
		return config{}, fmt.Errorf("retry_window and pass_lifetime must be positive")
	}
	return cfg, nil
}
