package main

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/daemon"
	"github.com/portcullis-mta/portcullis/core/metrics"
)

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestMetricsReloadSamePortOtherHost: a reload that moves /metrics to
// another host on the same port (an admin narrowing 0.0.0.0:9425 to
// 127.0.0.1:9425; here the same port spelt as an IPv4-mapped address,
// to stay on loopback) cannot bind while the old endpoint holds the port.
// The move must happen anyway, not leave the old endpoint serving forever.
func TestMetricsReloadSamePortOtherHost(t *testing.T) {
	var logs strings.Builder
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	port := strconv.Itoa(quietPort(t))
	s := &metricsService{m: metrics.New(), addr: "127.0.0.1:" + port, log: slog.New(slog.NewTextHandler(&logs, nil))}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	moved := "[::ffff:127.0.0.1]:" + port
	cfg := &config.Config{}
	cfg.Metrics.Address = moved
	if err := s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if s.addr != moved {
		t.Fatalf("metrics address in force %q after the reload, want %q", s.addr, moved)
	}
	if body := scrape(t, "127.0.0.1:"+port); !strings.Contains(body, "portcullis_") {
		t.Fatalf("no metrics served after the move:\n%s", body)
	}
}

// quietPort returns a loopback port that was free a moment ago, below
// Linux's ephemeral range (32768-60999): the reload under test frees the
// port and binds it again, and a port from that range may meanwhile
// become the local end of another test's outgoing connection (seen in CI:
// "bind: address already in use" on the second bind, fine on the third).
func quietPort(t *testing.T) int {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for range 200 {
		p := 20000 + r.IntN(12000)
		if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatal("no free port in 20000-31999 on 127.0.0.1")
	return 0
}

// TestMetricsReloadAddressInUse: a reload that moves /metrics onto a port
// another process holds is refused, as one that moves an SMTP listener
// there is: the daemon keeps its whole old config (here a log level and
// the relay domains changed as well) and the old endpoint keeps serving.
func TestMetricsReloadAddressInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	old := "127.0.0.1:" + strconv.Itoa(quietPort(t)) // freed and bound again by the refused reload
	dir := t.TempDir()
	text := func(metricsAddr, domain string) []byte {
		return []byte("hostname: mx.example.test\nlisteners: [{name: mx, address: '127.0.0.1:0'}]\n" +
			"relay: {domains: [" + domain + "]}\ndns: {servers: ['127.0.0.1:53']}\n" +
			"metrics: {address: '" + metricsAddr + "'}\n")
	}
	cfg, err := config.ParseIn(text(old, "old.example"), "p.yaml", dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	d, err := daemon.New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	d.AddService(&metricsService{m: metrics.New(), addr: old, log: logger})
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	next, err := config.ParseIn(text(busy.Addr().String(), "new.example"), "p.yaml", dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.ReloadConfig(next); err == nil || !strings.Contains(err.Error(), "metrics.address "+busy.Addr().String()) {
		t.Fatalf("reload onto a port in use: %v, want it refused naming metrics.address", err)
	}
	if got := d.Config(); got != cfg {
		t.Errorf("config in force after the refused reload: metrics %q, domains %v; want the old one",
			got.Metrics.Address, got.Relay.Domains)
	}
	if body := scrape(t, old); !strings.Contains(body, "portcullis_") {
		t.Errorf("the old endpoint stopped serving:\n%s", body)
	}
}
