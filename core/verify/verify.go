// Package verify is recipient verification at RCPT: before a recipient in
// relay.domains is accepted, the server behind the gateway that holds its
// mailbox is asked (a probe: EHLO, MAIL FROM:<>, RCPT TO, RSET, QUIT;
// never DATA), and its answer is cached, as Postfix's address_verify
// (reject_unverified_recipient) and Exim's verify = recipient/callout do.
// A gateway that accepted every address and learnt at delivery that there
// is no such mailbox would have to bounce to a sender that is usually
// forged (backscatter) or drop the mail.
//
// The probe itself is delivery's (routes, TLS policy, tls_verify, AUTH);
// this package decides what to ask, keeps the answers, shares one probe
// among concurrent RCPTs for the same address, bounds the probes through
// one route, and turns the answer into the RCPT reply.
package verify

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/delivery/smtpc"
)

// Cache lifetimes, Postfix's address_verify defaults: a mailbox that
// exists rarely vanishes, one that does not may be created soon.
const (
	PositiveExpire  = 31 * 24 * time.Hour // address_verify_positive_expire_time
	PositiveRefresh = 7 * 24 * time.Hour  // address_verify_positive_refresh_time
	NegativeExpire  = 3 * 24 * time.Hour  // address_verify_negative_expire_time
	NegativeRefresh = 3 * time.Hour       // address_verify_negative_refresh_time
)

// DefaultTimeout bounds a session's wait for the answer to its RCPT:
// well below the client's own wait for our reply (RFC 5321 4.5.3.2.2: 5
// minutes), and short enough that a server behind that hangs costs each
// client a few seconds only (Postfix's smtpd polls its verify daemon
// address_verify_poll_count times address_verify_poll_delay, 3 x 3s).
const DefaultTimeout = 10 * time.Second

// DefaultProbeTimeout bounds one probe, connection to RCPT reply, waiting
// for a free place to the next hop included. It is longer than a session
// waits: a server that is slow to answer (a postscreen greet wait, a slow
// reverse lookup before its greeting) still gets asked to the end, and its
// answer is cached for the client's next try, as Postfix's probe goes on
// after smtpd has replied "Address verification in progress".
const DefaultProbeTimeout = time.Minute

// DefaultMaxEntries bounds the cache (least recently used entries go
// first); an entry is a hundred bytes or so.
const DefaultMaxEntries = 100000

// Target is where a recipient's answer comes from: a route with
// verify_recipients on.
type Target struct {
	Hop        string // the route's next_hop, lower-cased: answers are cached per next hop
	Route      int    // its index in routes, for logs
	Limit      int    // probes through the route at once (its concurrency)
	TempAccept bool   // verify_tempfail: accept
}

// Answer is what a probe learnt.
type Answer struct {
	Host string       // the server asked, "host[addr]:port", "" if none was reached
	Mail *smtpc.Reply // its reply to MAIL FROM:<> when that was refused, else nil
	Rcpt *smtpc.Reply // its reply to RCPT TO, nil if none came
	Err  error        // why no reply came: no connection, TLS, a timeout, ...
}

// Prober is delivery's side (*delivery.Manager is one).
type Prober interface {
	// VerifyTarget returns the route of rcpt when it is in relay.domains
	// and its route has verify_recipients on.
	VerifyTarget(rcpt string) (Target, bool)
	// Probe asks the route's next hop about rcpt, within ctx.
	Probe(ctx context.Context, rcpt string) Answer
}

// Options are a Verifier's dependencies.
type Options struct {
	Prober       Prober
	Logger       *slog.Logger     // nil: discarded
	Now          func() time.Time // nil: time.Now
	Timeout      time.Duration    // a session's wait for an answer; 0: DefaultTimeout
	ProbeTimeout time.Duration    // per probe; 0: DefaultProbeTimeout
	MaxEntries   int              // 0: DefaultMaxEntries
}

// Verifier answers RCPTs from its cache or a probe. It is safe for
// concurrent use and lives as long as the daemon: reloads keep the cache,
// but for the answers of a next hop no route verifies with any more.
type Verifier struct {
	o     Options
	cache *cache

	mu      sync.Mutex
	flights map[string]*flight       // probes under way, by cache key
	slots   map[string]chan struct{} // probes through one route at once, by route and next hop
	bg      sync.WaitGroup           // probes under way
	halt    context.Context          // cancelled by Stop: the probes under way end
	cancel  context.CancelFunc
}

// New returns a Verifier over o.Prober.
func New(o Options) *Verifier {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = DefaultProbeTimeout
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	halt, cancel := context.WithCancel(context.Background())
	return &Verifier{o: o, cache: newCache(o.MaxEntries), flights: map[string]*flight{}, slots: map[string]chan struct{}{},
		halt: halt, cancel: cancel}
}

// key is what an answer is cached under: the next hop, and the address
// with its domain lower-cased (the local part keeps its case, RFC 5321
// 2.4; the server behind decides what it makes of it).
func key(hop, rcpt string) string {
	i := strings.LastIndexByte(rcpt, '@')
	return hop + " " + rcpt[:i+1] + strings.ToLower(rcpt[i+1:])
}

// Start does nothing: the Verifier works from New on (a daemon.Service).
func (v *Verifier) Start(context.Context) error { return nil }

// Reload drops the answers of next hops that no route of cfg verifies
// with any more: a route moved to another server (whose mailboxes may
// differ), or whose verification was turned off (its answers would be
// stale when it is turned on again). Answers of a next hop that stays are
// kept, whichever route now leads to it.
func (v *Verifier) Reload(cfg *config.Config) error {
	keep := map[string]bool{}
	for _, r := range cfg.Routes {
		if r.VerifyRecipients {
			keep[strings.ToLower(r.NextHop)] = true
		}
	}
	if n := v.cache.dropHops(keep); n > 0 {
		v.o.Logger.Info("verify: reload dropped the cached answers of next hops no route verifies with", "entries", n)
	}
	return nil
}

// Stop ends the probes under way and waits for them: the sessions have
// ended by then, and the cache, in memory, would not keep their answers.
func (v *Verifier) Stop(ctx context.Context) error {
	v.cancel()
	done := make(chan struct{})
	go func() { v.bg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
