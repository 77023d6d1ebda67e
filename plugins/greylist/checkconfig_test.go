package greylist

import (
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// TestCheckConfig: CheckConfig refuses what Configure refuses, with the
// same words, and leaves nothing behind: no goroutine, no file (the
// state file of a running gateway is not even opened).
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	c := plugintest.Case
	plugintest.CheckConfigs(t, New, dir, []plugintest.ConfigCase{
		c("ok", nil, nil, ""),
		c("redis not asked", func(e sdk.Env) sdk.Env { e.RedisURL = "redis://127.0.0.1:1/0"; return e }, nil, ""),
		c("bad redis url", func(e sdk.Env) sdk.Env { e.RedisURL = "ftp://127.0.0.1/0"; return e }, nil, "greylist: state.redis"),
		c("no state", func(e sdk.Env) sdk.Env { e.StatePath = ""; return e }, nil, "greylist: no state file"),
		c("unknown key", nil, map[string]any{"dealy": "1m"},
			`unknown key "dealy" (want delay, retry_window, pass_lifetime, auto_allow_after, ipv4_prefix, ipv6_prefix) (did you mean "delay"?)`),
		c("bad prefix", nil, map[string]any{"ipv4_prefix": 33}, "ipv4_prefix: want a whole number from 8 to 32, got 33"),
	})
}
