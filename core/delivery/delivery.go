// Package delivery takes messages from the queue and relays them: a route
// per recipient domain (a fixed next hop, an OB25 smarthost with SMTP AUTH,
// or MX lookup), connections kept per destination and reused, per-recipient
// replies honoured, 4xx retried on the queue.retry schedule until max_age,
// and RFC 3464 delivery status notifications to the sender under the bounce
// policy (CONTRACT.md routes, dns, queue).
//
// Delivery is at least once: a lease is updated only after the next hop's
// verdict, so a crash between its 250 and our update may send a message
// twice, never zero times.
package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/dnsresolve"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// Resolver finds mail exchangers and addresses; *dnsresolve.Resolver is one.
type Resolver interface {
	LookupMX(ctx context.Context, domain string) ([]dnsresolve.MX, error)
	LookupIP(ctx context.Context, host string) ([]netip.Addr, error)
}

// Signer transforms the outgoing message stream, e.g. to add a
// DKIM-Signature. It must stream, not buffer whole messages where it can
// avoid it. An error alone defers the message; a reader and an error both
// say the message cannot be signed but goes out as that reader (the error
// is logged as a warning).
type Signer interface {
	Sign(env *queue.Envelope, msg io.Reader) (io.Reader, error)
}

// Deps is what a Manager needs from the world.
type Deps struct {
	Config   *config.Config
	Queue    queue.Store
	Logger   *slog.Logger
	Now      func() time.Time
	Resolver Resolver                                                          // nil: built from cfg.DNS (again at Reload)
	Dial     func(ctx context.Context, network, addr string) (net.Conn, error) // nil: net.Dialer
	// TLSConfig returns the base TLS config for a next hop (tests inject a
	// root pool); nil: the system roots. ServerName and verification are
	// set per route on a clone.
	TLSConfig func(host string) *tls.Config
	Signer    Signer // nil: messages go out as spooled
	// Timeout bounds each SMTP read and write; 0: 5 minutes (RFC 5321 4.5.3.2).
	Timeout time.Duration
}

// Manager is the delivery service: Start, Reload, Stop (core/daemon runs it).
type Manager struct {
	d     Deps
	log   *slog.Logger
	set   atomic.Pointer[settings]
	pool  *pool
	lim   *limiter
	dead  *deadCache
	park  *parkLot
	unrec *unrecorded

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	// aborted ends when Stop gives up waiting for the transactions under
	// way: their connections are closed then (see transactOnce).
	aborted context.Context
	abort   context.CancelFunc
	running sync.WaitGroup // deliveries in flight
	kick    chan struct{}  // a delivery ended: look at the schedule again
	workers chan struct{}  // queue.workers places, taken per transaction (see worker)
}

// New checks the delivery part of d.Config and returns a Manager.
func New(d Deps) (*Manager, error) {
	if d.Config == nil || d.Queue == nil {
		return nil, errors.New("delivery: Config and Queue are required")
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Dial == nil {
		// RFC 5321 4.5.3.2 has no connect timeout; the OS default (minutes)
		// would hold a worker per message to a dead host. 30s is Postfix's.
		nd := &net.Dialer{Timeout: 30 * time.Second}
		d.Dial = nd.DialContext
	}
	if d.Timeout <= 0 {
		d.Timeout = 5 * time.Minute
	}
	m := &Manager{d: d, log: d.Logger, pool: newPool(), lim: newLimiter(), dead: newDeadCache(),
		park:  newParkLot(),
		unrec: newUnrecorded(),
		kick:  make(chan struct{}, 1)}
	s, err := m.newSettings(d.Config)
	if err != nil {
		return nil, err
	}
	m.set.Store(s)
	m.warnOpenSecrets(d.Config)
	return m, nil
}

// warnOpenSecrets warns of a smarthost password file that other users can
// read. It is not refused, as a DKIM key is: the file may be shared on
// purpose; but the ISP password is the one secret an office gateway keeps.
func (m *Manager) warnOpenSecrets(cfg *config.Config) {
	for _, o := range OpenPasswordFiles(cfg) {
		m.log.Warn("delivery: a smarthost password file is readable by every user of this machine; chmod 600 it (or 640 with the daemon's group)",
			"route", o.Route, "next_hop", o.NextHop, "path", o.Path, "mode", fmt.Sprintf("%#o", o.Mode))
	}
}

// OpenFile is a route's password file that every user can read.
type OpenFile struct {
	Route   int    // the route's index in routes, from 0
	NextHop string // its next_hop
	Path    string // the file, resolved against the config's directory
	Mode    os.FileMode
}

// OpenPasswordFiles lists the routes' auth.password_file files that every
// user of the machine can read (the daemon warns at start and reload;
// portcullis check says so too).
func OpenPasswordFiles(cfg *config.Config) []OpenFile {
	var out []OpenFile
	for i, r := range cfg.Routes {
		if r.Auth == nil || r.Auth.PasswordFile == "" {
			continue
		}
		path := r.Auth.PasswordFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(cfg.Dir, path)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o004 != 0 {
			out = append(out, OpenFile{Route: i, NextHop: r.NextHop, Path: path, Mode: fi.Mode().Perm()})
		}
	}
	return out
}

// newSettings prepares cfg, with a resolver for its dns section unless one
// was injected.
func (m *Manager) newSettings(cfg *config.Config) (*settings, error) {
	s, err := newSettings(cfg)
	if err != nil {
		return nil, err
	}
	s.resolver = m.d.Resolver
	if s.resolver == nil {
		r, err := dnsresolve.New(dnsresolve.Options{Servers: cfg.DNS.Servers, Timeout: cfg.DNS.Timeout.D()})
		if err != nil {
			return nil, fmt.Errorf("delivery: %w", err)
		}
		s.resolver = r
	}
	return s, nil
}

// Reload takes a new configuration for the next deliveries; those under
// way finish with the old one. Idle connections are dropped, as routes,
// TLS or credentials may have changed, and so are the destinations marked
// dead: the admin who fixed a smarthost password and reloaded wants the
// next message to try it, not to be told the old 535 again. The worker
// count stays that of Start.
func (m *Manager) Reload(cfg *config.Config) error {
	s, err := m.newSettings(cfg)
	if err != nil {
		return err
	}
	m.set.Store(s)
	m.pool.closeAll()
	m.dead.clear()
	m.unparkAll() // routes, and so destination keys, may have changed
	m.warnOpenSecrets(cfg)
	return nil
}

// Start begins delivering in the background.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil {
		return errors.New("delivery: already started")
	}
	ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	m.aborted, m.abort = context.WithCancel(context.Background())
	m.done = make(chan struct{})
	m.workers = make(chan struct{}, m.set.Load().workers)
	if _, ok := m.d.Queue.(hastener); ok {
		m.lim.mu.Lock()
		m.lim.active = activeLimit(cap(m.workers))
		m.lim.mu.Unlock()
	}
	go func() {
		defer close(m.done)
		m.dispatch(ctx)
	}()
	go m.pool.janitor(ctx, m.d.Now)
	return nil
}

// Stop ends delivery. No transaction starts after it is called; those
// under way may finish until shortly before ctx's deadline (stopReserve),
// as one whose final dot has gone out is delivered by the next hop
// whatever we do: cut off before its reply, it would be sent again after
// the restart (RFC 1047). What is still running then is interrupted (its
// connection closed), and every lease is updated or released before Stop
// returns, unless ctx ends first. Without a deadline, transactions under
// way are interrupted at once.
func (m *Manager) Stop(ctx context.Context) error {
	m.mu.Lock()
	cancel, abort, done := m.cancel, m.abort, m.done
	m.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	defer abort()
	finished := make(chan struct{})
	go func() {
		<-done
		m.running.Wait()
		close(finished)
	}()
	defer m.pool.closeAll()
	var wait time.Duration
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		wait = left - min(stopReserve, left/2)
	}
	grace := time.NewTimer(max(wait, 0))
	defer grace.Stop()
	select {
	case <-finished:
		return nil
	case <-grace.C:
	case <-ctx.Done():
	}
	abort()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("delivery: stop: %w", ctx.Err())
	}
}

// stopReserve is the part of Stop's time kept for interrupting what is
// still under way and recording it (half of it when there is less).
const stopReserve = 2 * time.Second

// settings is the configuration as delivery uses it.
type settings struct {
	resolver    Resolver
	hostname    string
	routes      []*route
	local       policy.Domains // relay.domains
	retry       []time.Duration
	maxAge      time.Duration
	delayNotice time.Duration
	bounce      string
	workers     int
}

func newSettings(cfg *config.Config) (*settings, error) {
	def := config.Defaults()
	routes, err := compileRoutes(cfg)
	if err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	s := &settings{hostname: cfg.Hostname, routes: routes, local: policy.NewDomains(cfg.Relay.Domains),
		maxAge: cfg.Queue.MaxAge.D(), delayNotice: cfg.Queue.DelayNotice.D(),
		bounce: cfg.Queue.Bounce, workers: cfg.Queue.Workers}
	for _, r := range cfg.Queue.Retry {
		if r > 0 {
			s.retry = append(s.retry, r.D())
		}
	}
	if len(s.retry) == 0 {
		for _, r := range def.Queue.Retry {
			s.retry = append(s.retry, r.D())
		}
	}
	if s.maxAge <= 0 {
		s.maxAge = def.Queue.MaxAge.D()
	}
	if s.workers <= 0 {
		s.workers = def.Queue.Workers
	}
	switch s.bounce {
	case "":
		s.bounce = def.Queue.Bounce
	case "local", "all", "none":
	default:
		return nil, fmt.Errorf("delivery: queue.bounce %q: want local, all or none", s.bounce)
	}
	if s.hostname == "" {
		s.hostname = "localhost"
	}
	return s, nil
}

// retryAfter is the wait after the n-th attempt (1-based): the schedule's
// n-th interval, then its last one again.
func (s *settings) retryAfter(n int) time.Duration {
	return s.retry[min(max(n, 1), len(s.retry))-1]
}
