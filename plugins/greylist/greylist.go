// Package greylist is the greylisting stage (RFC 6647): a message from an
// unknown (client network, sender, recipient) triplet is deferred, and let
// through when the client retries after the delay, as a real MTA does and
// most bulk senders do not.
//
// The client is its /24 (IPv4) or /64 (IPv6) network, since large senders
// retry from another address of the same pool (RFC 6647 4.1). A triplet
// first seen now is deferred for delay; a retry after delay and within
// retry_window passes, and the triplet then passes without delay for
// pass_lifetime (renewed on every use). A triplet keeps the deadlines it
// was first seen under, except that a reload that shortens the delay lets
// it through sooner (see Stage.ready). A client network that has
// retried properly (passed a triplet) on auto_allow_after occasions passes
// everything for pass_lifetime, also renewed on every use; passes less
// than an hour after the last one counted are the same occasion (see
// occasionGap), so one message to many recipients counts once.
//
// Addresses are compared in lower case; the sender also without the tags
// that change between attempts (BATV prvs=TAG=, SRS hash and day stamp,
// "+" extensions, standalone numbers of VERP addresses), so that a retry
// from a bulk or forwarding sender meets its first attempt.
//
// The stage runs at rcpt. Verdict fail with tag "greylist" and
// attrs.retry_after (seconds until a retry will pass) when deferring;
// verdict pass with tag "passed" (first pass), "known" (a passed triplet)
// or "auto_allow" (the client). The rule turns fail into a 451 4.7.1.
//
// State lives in a Store. When the gateway config sets state.redis
// (sdk.Env.RedisURL), it is a RedisStore: several gateways sharing one
// Redis share the greylist, so a sender retrying through another MX is not
// greylisted again. Keys are "portcullis:greylist:<stage>:<key>" (key
// "t|<network>|<from>|<rcpt>" for a triplet, "%" and "|" in the addresses
// escaped as %25 and %7c and a key over 512 bytes cut short and ended with
// a hash, "c|<network>" for a client),
// each with a TTL so Redis expires them itself. A new triplet is stored
// only where none is (SET NX) and a client's passes are counted by a Lua
// script on the server, so gateways seeing one sender at once agree. The server is pinged at
// Configure: one that refuses (a wrong password or database) is a load error; one that does not
// answer is logged, and its checks fail until it does, as while running. A Redis failure while
// checking is an error, so the stage's on_error decides, never a silent
// pass: tempfail keeps greylisting strict while the store is down (mail
// waits), continue keeps mail flowing ungreylisted (the example rules'
// choice). Without state.redis the
// store is a bbolt file at the stage's state path (sdk.Env.StatePath),
// swept of expired records hourly.
//
// A dry run (sdk.Request.DryRun: portcullis scan) decides from what is
// stored and writes nothing: a new triplet is "new triplet" every time,
// a retry after the delay "passed" without being recorded, and no record
// is renewed, counted or swept.
//
// # Config
//
//	delay: 5m              # minimum wait before a retry passes
//	retry_window: 48h      # a retry later than delay+retry_window starts over
//	pass_lifetime: 35d     # how long a passed triplet or client is remembered
//	auto_allow_after: 5    # occasions (an hour apart) a client retried properly, after which it passes; 0 = never
//	ipv4_prefix: 24
//	ipv6_prefix: 64
package greylist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// Stage is the greylisting stage.
type Stage struct {
	now func() time.Time

	// mu guards cfg, store and source: a check holds it shared for its
	// whole call, Configure and Close exclusively, so no store is closed
	// under a check.
	mu     sync.RWMutex
	cfg    config
	store  Store
	source string // what store was opened from (storeSource); "" if given by NewWithStore

	// serial serialises the decisions on a store that is not shared
	// (BoltStore: Get, decide, Put) and guards the sweep. A shared store
	// (see shared) needs no such lock, and must not have it: each check
	// is several round trips to Redis, and with them queued one behind
	// another, 30 ms of Redis latency timed out a third of 60 concurrent
	// RCPTs at a 3 s stage timeout.
	serial    sync.Mutex
	lastSweep time.Time
	sweeping  sync.WaitGroup // the sweep under way, if any (Close waits for it)
	swept     chan struct{}  // closed when the last sweep started ended; for tests
}

var (
	_ sdk.Stage         = (*Stage)(nil)
	_ sdk.Closer        = (*Stage)(nil)
	_ sdk.ConfigChecker = (*Stage)(nil)
)

// New returns a greylisting stage on the system clock.
func New() sdk.Stage { return &Stage{now: time.Now} }

// NewWithStore returns a stage on store and clock now, for tests and for
// other stores; Configure then leaves the store as it is.
func NewWithStore(store Store, now func() time.Time) *Stage {
	return &Stage{now: now, store: store}
}

// Info implements sdk.Stage.
func (s *Stage) Info() sdk.Info {
	return sdk.Info{Name: "greylist", Version: "1.0.0", Phases: []sdk.Phase{sdk.PhaseRcpt}}
}

// Configure implements sdk.Stage. The store is opened once and kept across
// reloads while its source (the bbolt path, or the Redis URL and stage
// name) stays the same; a store given to NewWithStore is always kept.
func (s *Stage) Configure(ctx context.Context, env sdk.Env, raw map[string]any) error {
	cfg, err := parseConfig(raw)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	want := storeSource(env)
	if s.store == nil || s.source != "" && s.source != want {
		st, err := s.open(ctx, env)
		if err != nil {
			return err
		}
		if s.store != nil {
			s.store.Close()
		}
		s.store, s.source = st, want
	}
	s.cfg = cfg
	return nil
}

// CheckConfig implements sdk.ConfigChecker: the config and where the
// store would be, without opening the file (a running gateway holds its
// lock) or connecting to Redis.
func (s *Stage) CheckConfig(_ context.Context, env sdk.Env, raw map[string]any) error {
	if _, err := parseConfig(raw); err != nil {
		return err
	}
	if env.RedisURL != "" {
		_, err := redisOptions(env.RedisURL)
		return err
	}
	if env.StatePath == "" {
		return errNoState
	}
	return nil
}

// errNoState refuses a config when the gateway keeps no state.
var errNoState = errors.New("greylist: no state file (set state.path or state.redis in the gateway config)")

// storeSource names the store env asks for; equal names, same store.
func storeSource(env sdk.Env) string {
	if env.RedisURL != "" {
		return "redis\x00" + env.RedisURL + "\x00" + env.StageName
	}
	return "bolt\x00" + env.StatePath
}

// open opens the store env asks for: Redis when state.redis is set (state
// shared by several gateways), else the stage's bbolt file.
func (s *Stage) open(ctx context.Context, env sdk.Env) (Store, error) {
	if env.RedisURL != "" {
		ctx, cancel := context.WithTimeout(ctx, redisPingTimeout)
		defer cancel()
		return OpenRedis(ctx, env.RedisURL, env.StageName, s.now)
	}
	if env.StatePath == "" {
		return nil, errNoState
	}
	return OpenBolt(env.StatePath, s.now)
}

// redisPingTimeout bounds the connection check at load.
const redisPingTimeout = 5 * time.Second

// Close implements sdk.Closer.
func (s *Stage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		return nil
	}
	err := s.store.Close()
	s.store = nil
	s.sweeping.Wait() // it ends at its next batch: the file is closed
	return err
}

// Check implements sdk.Stage.
func (s *Stage) Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error) {
	ip, err := netip.ParseAddr(req.Conn.IP)
	if err != nil {
		return nil, fmt.Errorf("greylist: bad client address %q", req.Conn.IP)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.store == nil {
		return nil, errors.New("greylist: not configured")
	}
	if !shared(s.store) {
		s.serial.Lock()
		defer s.serial.Unlock()
	}
	now := s.now()
	dry := req.DryRun
	if !dry {
		s.sweep(now)
	}
	network := clientNet(ip.Unmap(), s.cfg)
	client, known, err := s.store.Get(ctx, "c|"+network)
	if err != nil {
		return nil, err
	}
	attrs := map[string]string{"client": network}
	if known && s.cfg.autoAllow > 0 && client.Count >= s.cfg.autoAllow {
		// Renewed by use, as a triplet is: a client that keeps sending
		// must not be greylisted again every pass_lifetime. A dry run
		// is no use.
		if !dry {
			if err := s.store.Put(ctx, "c|"+network, client, now.Add(s.cfg.passLifetime)); err != nil {
				return nil, err
			}
		}
		return &sdk.Result{Verdict: sdk.VerdictPass, Tags: []string{"auto_allow"}, Attrs: attrs,
			Reason: fmt.Sprintf("client %s: proper retries counted (an hour apart): %d", network, client.Count)}, nil
	}
	key := tripletKey(network, sender(req.Envelope.From), address(req.Envelope.Rcpt))
	r, ok, err := s.store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if dry {
		return s.peek(now, r, ok, attrs), nil
	}
	return s.decide(ctx, now, key, r, ok, network, attrs)
}

// decide answers for the triplet under key, r its record if ok, and
// records the outcome.
func (s *Stage) decide(ctx context.Context, now time.Time, key string, r Record, ok bool, network string, attrs map[string]string) (*sdk.Result, error) {
	cfg := s.cfg
	switch {
	case !ok:
		theirs, found, err := s.create(ctx, key, s.fresh(now), now.Add(cfg.delay+cfg.retryWindow))
		if err != nil {
			return nil, err
		}
		if found { // another gateway recorded the triplet since our Get
			return s.decide(ctx, now, key, theirs, true, network, attrs)
		}
		return deferred(cfg.delay, attrs, "new triplet"), nil
	case !r.Passed.IsZero():
		if err := s.store.Put(ctx, key, r, now.Add(cfg.passLifetime)); err != nil {
			return nil, err
		}
		return knownResult(attrs), nil
	case now.Before(r.First):
		// First seen while the clock ran ahead, since set back: waiting
		// for the clock to catch up could outlast the sender's queue.
		// The delay starts over, by the clock as it is now.
		if err := s.store.Put(ctx, key, s.fresh(now), now.Add(cfg.delay+cfg.retryWindow)); err != nil {
			return nil, err
		}
		return deferred(cfg.delay, attrs, clockSetBack), nil
	case now.Before(s.ready(r)):
		return deferred(s.ready(r).Sub(now), attrs, "retried too early"), nil
	}
	r.Passed = now
	first := true
	var err error
	if p, ok := s.store.(Passer); ok {
		// Another gateway may be passing the same retry at this moment:
		// only the one that marks it passed counts the pass.
		first, err = p.Pass(ctx, key, r, now.Add(cfg.passLifetime))
	} else {
		err = s.store.Put(ctx, key, r, now.Add(cfg.passLifetime))
	}
	if err != nil {
		return nil, err
	}
	// Counted atomically, not client.Count+1: other gateways on the same
	// Redis may be counting this client's passes at the same moment.
	if first {
		if _, err := s.store.Incr(ctx, "c|"+network, now, now.Add(cfg.passLifetime), occasionGap); err != nil {
			return nil, err
		}
	}
	return passedResult(now, r.First, attrs), nil
}

// peek is decide for a dry run (sdk.Request.DryRun): the same answer from
// what is stored, with nothing created, renewed or counted.
func (s *Stage) peek(now time.Time, r Record, ok bool, attrs map[string]string) *sdk.Result {
	cfg := s.cfg
	switch {
	case !ok:
		return deferred(cfg.delay, attrs, "new triplet")
	case !r.Passed.IsZero():
		return knownResult(attrs)
	case now.Before(r.First):
		return deferred(cfg.delay, attrs, clockSetBack)
	case now.Before(s.ready(r)):
		return deferred(s.ready(r).Sub(now), attrs, "retried too early")
	}
	return passedResult(now, r.First, attrs)
}

// fresh is the record of a triplet first seen at now. Its retry window,
// the record's expiry, ends delay+retry_window later, by the config of
// now; Ready keeps the delay's part of it, so that a reload that
// lengthens the delay does not hold the triplet past the end of its
// window (see ready).
func (s *Stage) fresh(now time.Time) Record {
	return Record{First: now, Ready: now.Add(s.cfg.delay)}
}

// ready is when a retry of the waiting triplet r passes: after the delay
// it was first seen under (r.Ready), or the delay now where that is
// shorter. A reload thus never makes a waiting triplet wait longer, nor
// end its window sooner (with the delay now, one lengthened past the
// retry_window told a retry to come back after its record had expired,
// to start over); a shorter delay lets it through sooner, as it does a
// new triplet.
//
// A record written before Ready was kept (by the previous version: every
// waiting triplet an upgraded gateway finds, and those a gateway not yet
// upgraded writes to a shared Redis) expires first seen + delay +
// retry_window, as then configured, and is never renewed while it waits:
// its expiry less the retry_window now is when its delay ended, exactly
// so while retry_window is unchanged, and before its expiry in any case.
// Where that is before it was first seen (retry_window lengthened by more
// than the delay then), it says nothing, and the delay now is taken.
func (s *Stage) ready(r Record) time.Time {
	current := r.First.Add(s.cfg.delay)
	then := r.Ready
	if then.IsZero() && !r.expires.IsZero() {
		if t := r.expires.Add(-s.cfg.retryWindow); !t.Before(r.First) {
			then = t
		}
	}
	if !then.IsZero() && then.Before(current) {
		return then
	}
	return current
}

// occasionGap is how far apart two passes of a client network must be to
// count as two occasions towards auto_allow_after, as postgrey counts a
// client for --auto-whitelist-clients at most once an hour: a client
// proves itself by retrying properly again and again, and one message to
// many recipients, retried once, passes many triplets in a second.
const occasionGap = time.Hour

// clockSetBack is why a triplet first seen later than now is deferred.
const clockSetBack = "first seen later than now (clock set back), starting over"

// knownResult is the answer for a triplet that has passed.
func knownResult(attrs map[string]string) *sdk.Result {
	return &sdk.Result{Verdict: sdk.VerdictPass, Tags: []string{"known"}, Attrs: attrs, Reason: "known triplet"}
}

// passedResult is the answer to a retry after the delay, first seen at first.
func passedResult(now, first time.Time, attrs map[string]string) *sdk.Result {
	attrs["waited"] = strconv.Itoa(int(now.Sub(first).Seconds()))
	return &sdk.Result{Verdict: sdk.VerdictPass, Tags: []string{"passed"}, Attrs: attrs, Reason: "retried after the delay"}
}

// create stores a new triplet's record. On a store shared by several
// gateways (an Adder) it does so only if none is there, so that two
// gateways seeing the triplet at once agree on when it was first seen and
// neither overwrites a pass the other just recorded; it then returns the
// record found there, found true.
func (s *Stage) create(ctx context.Context, key string, r Record, expires time.Time) (Record, bool, error) {
	a, ok := s.store.(Adder)
	if !ok {
		return Record{}, false, s.store.Put(ctx, key, r, expires)
	}
	added, err := a.Add(ctx, key, r, expires)
	if err != nil || added {
		return Record{}, false, err
	}
	theirs, found, err := s.store.Get(ctx, key)
	if err != nil || found {
		return theirs, found, err
	}
	// What is there has expired by our clock but not yet by the store's.
	return Record{}, false, s.store.Put(ctx, key, r, expires)
}

func deferred(wait time.Duration, attrs map[string]string, why string) *sdk.Result {
	secs := int(math.Ceil(wait.Seconds()))
	attrs["retry_after"] = strconv.Itoa(max(secs, 1))
	return &sdk.Result{Verdict: sdk.VerdictFail, Tags: []string{"greylist"}, Attrs: attrs, Reason: "greylisted: " + why}
}

// shared reports whether st is a store that several gateways decide on at
// once (RedisStore): it creates, passes and counts atomically on the
// server (Adder, Passer, Store.Incr), so that the checks of one gateway,
// like those of several, need not wait for each other.
func shared(st Store) bool {
	_, a := st.(Adder)
	_, p := st.(Passer)
	return a && p
}

// sweep starts removing expired records from a bbolt store, at most
// hourly, in the background: inside Check, under the bbolt lock (serial), a sweep
// of a big file (1.2 s for a million records) held every session's check
// and overran stage timeouts once an hour. Sweep works in small write
// transactions, so checks write between them.
func (s *Stage) sweep(now time.Time) {
	b, ok := s.store.(*BoltStore)
	// A last sweep later than now (the clock set back) is no reason to
	// wait: that wait would last until the clock got there again.
	if since := now.Sub(s.lastSweep); !ok || since >= 0 && since < time.Hour {
		return
	}
	s.lastSweep = now
	done := make(chan struct{})
	s.swept = done
	s.sweeping.Add(1)
	go func() {
		defer s.sweeping.Done()
		defer close(done)
		_, _ = b.Sweep()
	}()
}

// maxKeyLen bounds a triplet's key. bbolt refuses keys over 32 KiB, and
// a refused key is an error: under on_error continue, a sender with a long
// enough address would never be greylisted.
const maxKeyLen = 512

// keyEscaper escapes the key's separator in the sender and recipient,
// which the client chooses ("|" is atext, RFC 5321 4.1.2), and the escape
// character itself.
var keyEscaper = strings.NewReplacer("%", "%25", "|", "%7c")

// tripletKey is the store key of a triplet: "t|<network>|<from>|<rcpt>".
// With the separators in from and rcpt escaped, no two triplets share a key
// (unescaped, "a@b|c" to "d@example.test" and "a@b" to "c|d@example.test"
// would, and passing one would pass the other). A key over maxKeyLen keeps
// its start and ends in "%h" and the SHA-256 of the whole: "%h" is never
// the result of escaping, so a hashed key never equals another key.
func tripletKey(network, from, rcpt string) string {
	key := "t|" + network + "|" + keyEscaper.Replace(from) + "|" + keyEscaper.Replace(rcpt)
	if len(key) <= maxKeyLen {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	h := "%h" + hex.EncodeToString(sum[:])
	return key[:maxKeyLen-len(h)] + h
}

// clientNet is ip's network: /24 or /64 by default.
func clientNet(ip netip.Addr, cfg config) string {
	bits := cfg.v6Prefix
	if ip.Is4() {
		bits = cfg.v4Prefix
	}
	p, _ := ip.Prefix(bits)
	return p.String()
}

// address is an envelope address as the key holds it: lower case
// (RFC 5321 2.4 lets local parts be case-sensitive, but senders and
// greylists treat them as one), "<>" for the null sender.
func address(a string) string {
	if a == "" {
		return "<>"
	}
	return strings.ToLower(a)
}

var (
	// batvRe: a BATV tag (draft-levine-smtp-batv "prvs=TAG=local";
	// Microsoft's msprvs1=, Barracuda's btv1==TAG==), new every day.
	batvRe = regexp.MustCompile(`^(?:prvs|msprvs\d*|btv\d*)=+[^=]*=+(.+)$`)
	// srs0Re and srs1Re: the hash and day stamp of a Sender Rewriting
	// Scheme address, which change daily.
	srs0Re = regexp.MustCompile(`^srs0[=+-][^=]*=[^=]*=(.+)$`)
	srs1Re = regexp.MustCompile(`^srs1[=+-][^=]*=([^=]*)=[=+-][^=]*=[^=]*=(.+)$`)
	// numberRe: the numbers of a VERP address (bounce-20260101-4711@).
	numberRe = regexp.MustCompile(`\b\d+\b`)
)

// sender is the envelope sender as the key holds it: address, with the
// tags that bulk and forwarding senders put in the local part, which may
// change from one attempt to the next, taken out (as postgrey does): a
// BATV tag, an SRS hash and day stamp, a "+" extension (VERP and
// subaddresses), and numbers standing alone. Otherwise the retry is a new
// triplet and is greylisted again, for ever.
func sender(a string) string {
	a = address(a)
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return a
	}
	local, domain := a[:at], a[at:]
	if m := batvRe.FindStringSubmatch(local); m != nil {
		local = m[1]
	}
	if m := srs0Re.FindStringSubmatch(local); m != nil {
		local = "srs0=" + m[1]
	} else if m := srs1Re.FindStringSubmatch(local); m != nil {
		local = "srs1=" + m[1] + "==" + m[2]
	} else if i := strings.IndexByte(local, '+'); i > 0 {
		local = local[:i]
	}
	return numberRe.ReplaceAllString(local, "#") + domain
}
