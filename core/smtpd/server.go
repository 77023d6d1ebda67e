// Package smtpd is the gateway's SMTP server (RFC 5321) on emersion/go-smtp.
//
// go-smtp parses commands and runs the dialog. In front of it sits our own
// accept loop (connection limits, PROXY protocol, pre-greet detection and
// the connect-phase pipeline must run before the greeting, but go-smtp only
// creates a session at EHLO) and a guard connection (guard.go) that owns
// TLS and sees every command line first. Sessions (session.go, data.go)
// apply policy, AUTH, limits and the pipeline, and commit accepted mail to
// the queue before the 250 reply.
package smtpd

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// Client is what the relay policy sees of a client.
type Client struct {
	IP            netip.Addr
	Authenticated bool
	User          string
}

// Policy decides who may send to whom (core/policy through an adapter).
type Policy interface {
	// Trusted reports whether ip is in relay.networks.
	Trusted(ip netip.Addr) bool
	// CheckMail and CheckRcpt return nil or an *smtperr.Error to send.
	CheckMail(c Client, from string) error
	CheckRcpt(c Client, from, rcpt string) error
}

// Authenticator checks SMTP AUTH credentials (RFC 4954) and keeps the
// per-IP lockout.
type Authenticator interface {
	Mechanisms() []string
	// NewServer starts one exchange; done is called once when it ends,
	// with the user name and nil, or the name the client claimed and why
	// it failed (core/auth's Users.NewServer has this shape).
	NewServer(mech string, done func(user string, err error)) (sasl.Server, error)
	Locked(ip netip.Addr) bool
	// Failure records a failed attempt as user (the name tried) and
	// reports whether it started a lockout; Success forgives that user's.
	Failure(ip netip.Addr, user string) bool
	Success(ip netip.Addr, user string)
}

// Resolver finds the client's host name (net.Resolver satisfies it).
type Resolver interface {
	LookupAddr(ctx context.Context, addr string) ([]string, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Verifier asks the server behind the gateway whether it takes a
// recipient (core/verify, routes[].verify_recipients). Verify returns nil
// to accept, or an *smtperr.Error to reply; it logs its own line with log,
// the session's logger.
type Verifier interface {
	Verify(ctx context.Context, log *slog.Logger, rcpt string) error
}

// Deps is everything a Server uses. Reload swaps the whole set.
type Deps struct {
	Config            *config.Config
	Queue, Quarantine queue.Store
	Policy            Policy
	Auth              Authenticator   // nil: no AUTH offered
	Pipeline          pipeline.Runner // nil: no stages
	Resolver          Resolver        // nil: client host names stay "unknown"
	Logger            *slog.Logger
	Now               func() time.Time
	// Learn, when set, is called after the commit of a message whose
	// data-phase decision carries learn:spam or learn:ham (rule actions
	// learn_spam / learn_ham); nil: those actions only tag.
	Learn LearnFunc
	// Verifier, when set, is asked about each recipient the relay policy,
	// the recipients file and the rcpt-phase rules accepted; nil: none.
	Verifier Verifier
}

// Server accepts SMTP connections on every listener of the config.
type Server struct {
	mu          sync.Mutex
	gen         *generation                        // what new connections get
	gens        map[*generation]bool               // generations with live go-smtp servers
	lns         map[string]net.Listener            // by listener name; a reload rebinds (listeners.go)
	loopName    map[string]*atomic.Pointer[string] // by listener name: the name its accept loop admits under (a rename changes it)
	started     bool                               // Start has bound lns
	conns       map[*guardConn]bool
	refused     map[*guardConn]bool  // refused in their greeting, waiting for QUIT (awaitQuit)
	perListener map[string]int       // connections, by listener name
	perIP       map[netip.Prefix]int // by limitKey
	rate        *connRate            // limits.max_connection_rate, by limitKey
	loops       sync.WaitGroup       // accept loops and connections being admitted
	live        sync.WaitGroup       // connections handed to go-smtp
	draining    atomic.Bool
	log         *slog.Logger
	learnSem    chan struct{}  // bounds Deps.Learn calls in flight
	learning    sync.WaitGroup // Deps.Learn calls in flight; Shutdown waits
}

// New checks d and prepares a server; Start binds the listeners.
func New(d Deps) (*Server, error) {
	s := &Server{
		gens:     map[*generation]bool{},
		lns:      map[string]net.Listener{},
		loopName: map[string]*atomic.Pointer[string]{},
		conns:    map[*guardConn]bool{},
		refused:  map[*guardConn]bool{},
		perIP:    map[netip.Prefix]int{}, perListener: map[string]int{},
		rate:     newConnRate(),
		learnSem: make(chan struct{}, learnSlots),
	}
	g, err := s.newGeneration(d)
	if err != nil {
		return nil, err
	}
	s.gen = g
	s.log = g.log
	return s, nil
}

// Start binds every listener of the config and starts accepting.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gen
	for _, lc := range g.listeners {
		ln, err := net.Listen(config.ListenNetwork(lc.Address), lc.Address)
		if err != nil {
			for _, l := range s.lns {
				_ = l.Close()
			}
			return fmt.Errorf("smtpd: listener %s: %w", lc.Name, err)
		}
		s.lns[lc.Name] = ln
		g.log.Info("listening", "listener", lc.Name, "address", ln.Addr().String())
	}
	if !s.gens[g] { // a Reload before Start has started it
		s.startGeneration(g)
	}
	for name, ln := range s.lns {
		s.startLoop(name, ln, g.listeners[name])
	}
	s.started = true
	return nil
}

// Addr is the bound address of a listener (nil before Start).
func (s *Server) Addr(listener string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ln := s.lns[listener]; ln != nil {
		return ln.Addr()
	}
	return nil
}

// Reload makes new sessions use d (config, policy, pipeline, TLS
// certificate) and opens, closes and rebinds listeners to match it.
// Sessions already running finish on what they started with. An error
// (a certificate, an address in use) changes nothing. It is Prepare and
// Commit in one.
func (s *Server) Reload(d Deps) error {
	r, err := s.Prepare(d)
	if err != nil {
		return err
	}
	r.Commit()
	return nil
}

// forceCloseWait is how long sessions told to close when the shutdown
// grace is over get to say 421 before their sockets are closed.
const forceCloseWait = time.Second

// Shutdown stops accepting, lets sessions finish until ctx is done, then
// closes those left, with a 421 where they are reading.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.mu.Lock()
	for _, ln := range s.lns {
		_ = ln.Close()
	}
	for g := range s.gens {
		g.ln.Close() // connections still being admitted get 421
	}
	for c := range s.conns {
		c.wake()
	}
	for c := range s.refused {
		c.wake() // awaitQuit ends: nothing to finish there
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		// Admissions first: no connection is handed over after that.
		s.loops.Wait()
		s.live.Wait()
		s.learning.Wait() // the stores close after Shutdown
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	n := len(s.conns)
	for c := range s.conns {
		c.forceClose()
	}
	s.mu.Unlock()
	s.log.Warn("shutdown grace over, closing sessions", "sessions", n)
	select {
	case <-done:
		return ctx.Err()
	case <-time.After(forceCloseWait):
	}
	// Those still there were not reading (a stage call, a commit): cut.
	s.mu.Lock()
	for c := range s.conns {
		c.kill()
	}
	s.mu.Unlock()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		// A connection still before its greeting (PROXY header, DNS)
		// ends on its own timeout; do not wait for it.
	}
	return ctx.Err()
}

func (s *Server) current() *generation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// loadTLS reads the certificate; nil when no listener needs one.
func loadTLS(cfg *config.Config) (*tls.Config, error) {
	need := false
	for _, l := range cfg.Listeners {
		need = need || l.TLS == "starttls" || l.TLS == "implicit"
	}
	if !need && (cfg.TLS.Cert == "" || cfg.TLS.Key == "") {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		return nil, fmt.Errorf("smtpd: tls certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
