package greylist

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// TestCheckConfig: CheckConfig refuses what Configure refuses, with the
// same words, accepts only what Configure accepts, and leaves nothing
// behind: no goroutine, no file (the state file of a running gateway is
// not even opened).
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	srv := startRedis(t)
	c := plugintest.Case
	plugintest.CheckConfigs(t, New, dir, []plugintest.ConfigCase{
		c("ok", nil, nil, ""),
		c("redis", func(e sdk.Env) sdk.Env { e.RedisURL = srv.url; return e }, nil, ""),
		c("bad redis url", func(e sdk.Env) sdk.Env { e.RedisURL = "ftp://127.0.0.1/0"; return e }, nil, "greylist: state.redis"),
		c("no state", func(e sdk.Env) sdk.Env { e.StatePath = ""; return e }, nil, "greylist: no state file"),
		c("unknown key", nil, map[string]any{"dealy": "1m"},
			`unknown key "dealy" (want delay, retry_window, pass_lifetime, auto_allow_after, ipv4_prefix, ipv6_prefix) (did you mean "delay"?)`),
		c("bad prefix", nil, map[string]any{"ipv4_prefix": 33}, "ipv4_prefix: want a whole number from 8 to 32, got 33"),
	})
}

// CheckConfig connects nowhere: `portcullis check` must not need the
// Redis server, nor load it. A listener counts the connections.
func TestCheckConfigRedisNotAsked(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	env := sdk.Env{StageName: "st", RedisURL: "redis://" + l.Addr().String() + "/0"}
	if err := New().(sdk.ConfigChecker).CheckConfig(context.Background(), env, nil); err != nil {
		t.Fatalf("CheckConfig: %v", err)
	}
	time.Sleep(50 * time.Millisecond) // a connection made in the background would be counted by now
	if n := conns.Load(); n != 0 {
		t.Errorf("CheckConfig made %d connections to Redis", n)
	}
}
