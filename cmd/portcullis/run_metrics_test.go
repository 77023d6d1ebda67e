package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
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
