package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/daemon"
	"github.com/portcullis-mta/portcullis/core/metrics"
)

// Prometheus metrics inside `portcullis run`: /metrics on metrics.address.
// The metric set is enabled (metrics.Active) once an address is first set
// and stays so, keeping its counts across reloads. A reload that changes
// the address binds the new one first and then closes the old one; when
// the new one cannot be bound the reload is refused, as for an SMTP
// listener's address in use (README: "a bad file or an address in use is
// refused and logged"), and the old one keeps serving: a reload that said
// it succeeded would leave the admin's scrapes on the old port with only an
// error line to tell. An empty address stops serving.
func init() {
	runHooks = append(runHooks, func(d *daemon.Daemon) error {
		logger := d.Logger() // follows log.level across reloads
		m := metrics.New()
		if q, ok := d.Queue().(interface{ Len() int }); ok {
			m.SetQueueLen(q.Len)
		}
		d.AddService(&metricsService{m: m, addr: d.Config().Metrics.Address, log: logger})
		return nil
	})
}

// metricsService serves one metric set on the configured address.
type metricsService struct {
	m   *metrics.Metrics
	log *slog.Logger

	mu   sync.Mutex
	addr string    // configured; "" is off
	srv  *endpoint // nil while off
}

// endpoint is one bound /metrics server. It keeps its listener to close it
// itself: http.Server.Shutdown misses a listener its Serve goroutine has not
// taken up yet, and the port must be free when closeServer returns (a
// reload may bind it again at once).
type endpoint struct {
	*http.Server
	ln net.Listener
}

// Start binds the address: a port that cannot be bound fails the start,
// like an SMTP listener's.
func (s *metricsService) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == "" {
		return nil
	}
	srv, err := s.serve(s.addr)
	if err != nil {
		return err
	}
	s.srv = srv
	return nil
}

// Reload rebinds when the address changed. A new address that cannot be
// bound refuses the reload (the daemon then gives the old config back to
// the services that took the new one); this endpoint stays as it was.
func (s *metricsService) Reload(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr := cfg.Metrics.Address
	if addr == s.addr {
		return nil
	}
	var next *endpoint
	if addr != "" {
		srv, err := s.serve(addr)
		if err != nil && s.srv != nil {
			// The old endpoint may hold the port itself: 0.0.0.0:9425 to
			// 127.0.0.1:9425 cannot bind while the old one listens. Free
			// it and try again; failing that, go back to the old one.
			closeServer(s.srv)
			s.srv = nil
			if srv, err = s.serve(addr); err != nil {
				var rerr error
				if s.srv, rerr = s.serve(s.addr); rerr != nil {
					s.log.Error("metrics: cannot bind the old address again either; not serving until a reload", "addr", s.addr, "err", rerr)
					s.addr = ""
				}
			}
		}
		if err != nil {
			return fmt.Errorf("metrics.address %s: %w", addr, err)
		}
		next = srv
	}
	if s.srv != nil {
		closeServer(s.srv)
	}
	s.srv, s.addr = next, addr
	return nil
}

// Stop closes the endpoint (a scrape in flight gets a few seconds).
func (s *metricsService) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	_ = s.srv.ln.Close()
	s.srv = nil
	return err
}

// serve listens on addr and serves /metrics there.
func (s *metricsService) serve(addr string) (*endpoint, error) {
	ln, err := net.Listen(config.ListenNetwork(addr), addr)
	if err != nil {
		return nil, err
	}
	metrics.Enable(s.m)
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics: serving stopped", "addr", addr, "err", err)
		}
	}()
	s.log.Info("metrics: serving /metrics", "addr", ln.Addr().String())
	return &endpoint{srv, ln}, nil
}

func closeServer(srv *endpoint) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	_ = srv.ln.Close()
}
