package greylist

import (
	"fmt"
	"strconv"
	"strings"
	"time"
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
			cfg.delay, err = duration(v)
		case "retry_window":
			cfg.retryWindow, err = duration(v)
		case "pass_lifetime":
			cfg.passLifetime, err = duration(v)
		case "auto_allow_after":
			cfg.autoAllow, err = whole(v, 0, 1<<20)
		case "ipv4_prefix":
			cfg.v4Prefix, err = whole(v, 8, 32)
		case "ipv6_prefix":
			cfg.v6Prefix, err = whole(v, 16, 128)
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

// duration reads Go durations plus whole days ("35d").
func duration(v any) (time.Duration, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("want a duration such as \"5m\" or \"35d\"")
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return d, nil
}

func whole(v any, lo, hi int) (int, error) {
	n, ok := v.(int)
	if !ok || n < lo || n > hi {
		return 0, fmt.Errorf("want a whole number from %d to %d", lo, hi)
	}
	return n, nil
}
