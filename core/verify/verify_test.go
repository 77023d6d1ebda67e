package verify

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/delivery/smtpc"
	"github.com/portcullis-mta/portcullis/core/smtperr"

	"github.com/portcullis-mta/portcullis/core/internal/logbuf"
)

// fakeProber answers from a table of addresses, counting probes; block,
// when set, holds each probe until it is closed (or ctx ends).
type fakeProber struct {
	target  Target
	noProbe map[string]bool // addresses VerifyTarget declines
	answers map[string]Answer
	block   chan struct{}
	probes  atomic.Int32
	mu      sync.Mutex
	asked   []string
}

func (p *fakeProber) VerifyTarget(rcpt string) (Target, bool) {
	if p.noProbe[rcpt] {
		return Target{}, false
	}
	return p.target, true
}

func (p *fakeProber) Probe(ctx context.Context, rcpt string) Answer {
	p.probes.Add(1)
	p.mu.Lock()
	p.asked = append(p.asked, rcpt)
	p.mu.Unlock()
	if p.block != nil {
		select {
		case <-p.block:
		case <-ctx.Done():
			return Answer{Host: "mbox.test[127.0.0.1]:25", Err: ctx.Err()}
		}
	}
	a, ok := p.answers[rcpt]
	if !ok {
		return Answer{Host: "mbox.test[127.0.0.1]:25", Rcpt: reply(550, "5.1.1", "no such user")}
	}
	return a
}

func reply(code int, enh, text string) *smtpc.Reply {
	return &smtpc.Reply{Code: code, Enhanced: enh, Lines: []string{text}}
}

// clock is an injectable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	v     *Verifier
	p     *fakeProber
	clock *clock
	logs  *logbuf.Buffer
	log   *slog.Logger
}

func newFixture(t *testing.T, edit ...func(*Options)) *fixture {
	t.Helper()
	p := &fakeProber{
		target: Target{Hop: "10.0.0.5:25", Route: 0, Limit: 4},
		answers: map[string]Answer{
			"bob@example.test":    {Host: "mbox.test[127.0.0.1]:25", Rcpt: reply(250, "2.1.5", "ok")},
			"busy@example.test":   {Host: "mbox.test[127.0.0.1]:25", Rcpt: reply(451, "4.3.0", "try later")},
			"nomail@example.test": {Host: "mbox.test[127.0.0.1]:25", Mail: reply(550, "5.7.1", "no null sender here")},
			"down@example.test":   {Err: errors.New("connect to 10.0.0.5[10.0.0.5]:25: connection refused")},
		},
	}
	f := &fixture{p: p, clock: &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, logs: &logbuf.Buffer{}}
	f.log = slog.New(slog.NewTextHandler(f.logs, nil))
	o := Options{Prober: p, Logger: f.log, Now: f.clock.Now, Timeout: 5 * time.Second}
	for _, e := range edit {
		e(&o)
	}
	f.v = New(o)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", f.logs.String())
		}
	})
	return f
}

// check runs Verify and returns the reply ("" for accepted).
func (f *fixture) check(t *testing.T, rcpt string) string {
	t.Helper()
	err := f.v.Verify(context.Background(), f.log, rcpt)
	if err == nil {
		return ""
	}
	var se *smtperr.Error
	if !errors.As(err, &se) {
		t.Fatalf("Verify(%s) = %v, not an *smtperr.Error", rcpt, err)
	}
	return se.Reply()
}

func TestReplies(t *testing.T) {
	cases := []struct {
		name, rcpt, want string
		tempAccept       bool
	}{
		{"known", "bob@example.test", "", false},
		{"unknown", "eve@example.test",
			"550 5.1.1 <eve@example.test>: Recipient address rejected: undeliverable address: the mailbox server said: 550 5.1.1 no such user", false},
		{"backend 4xx", "busy@example.test",
			"450 4.1.1 <busy@example.test>: Recipient address rejected: unverified address: the mailbox server said: 451 4.3.0 try later", false},
		{"no connection", "down@example.test",
			"450 4.1.1 <down@example.test>: Recipient address rejected: unverified address: the mailbox server could not be asked; try again later", false},
		{"null sender refused", "nomail@example.test",
			"450 4.1.1 <nomail@example.test>: Recipient address rejected: unverified address: the mailbox server could not be asked; try again later", false},
		{"4xx accepted by verify_tempfail", "busy@example.test", "", true},
		{"no connection accepted by verify_tempfail", "down@example.test", "", true},
		{"unknown refused even with verify_tempfail", "eve@example.test",
			"550 5.1.1 <eve@example.test>: Recipient address rejected: undeliverable address: the mailbox server said: 550 5.1.1 no such user", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.p.target.TempAccept = c.tempAccept
			if got := f.check(t, c.rcpt); got != c.want {
				t.Errorf("reply\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

// TestBackendTextMadeSafe: the server's words reach our client on one
// line of printable ASCII, cut to a length that fits a reply line.
func TestBackendTextMadeSafe(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("x", 600)
	f.p.answers["evil@example.test"] = Answer{Rcpt: &smtpc.Reply{Code: 550, Enhanced: "5.1.1",
		Lines: []string{"no\x1b[31m such\tuser é", "second line", long}}}
	got := f.check(t, "evil@example.test")
	if strings.ContainsAny(got, "\r\n\t\x1b") || strings.ContainsFunc(got, func(r rune) bool { return r > 0x7e }) {
		t.Errorf("reply not one safe line: %q", got)
	}
	if !strings.Contains(got, "said: 550 5.1.1 no[31m suchuser ?; second line; xxx") || !strings.HasSuffix(got, "x...") {
		t.Errorf("reply = %q", got)
	}
	if len(got) > 400 {
		t.Errorf("reply of %d octets", len(got))
	}
}

func TestNoProbe(t *testing.T) {
	f := newFixture(t)
	f.p.noProbe = map[string]bool{"bob@outside.test": true}
	for _, rcpt := range []string{"bob@outside.test", "postmaster@example.test", "PostMaster@example.test"} {
		if got := f.check(t, rcpt); got != "" {
			t.Errorf("%s: %q, want accepted without a probe", rcpt, got)
		}
	}
	if n := f.p.probes.Load(); n != 0 {
		t.Errorf("%d probes, want none", n)
	}
}

func TestCache(t *testing.T) {
	f := newFixture(t)
	for range 3 {
		f.check(t, "bob@example.test")
		f.check(t, "eve@example.test")
		f.check(t, "bob@EXAMPLE.test") // the domain's case makes no other address
	}
	if n := f.p.probes.Load(); n != 2 {
		t.Errorf("%d probes, want 2 (one per address)", n)
	}
	if n := strings.Count(f.logs.String(), "cached=true"); n != 7 {
		t.Errorf("%d answers from the cache, want 7", n)
	}
	// Temporary failures are not cached.
	f.check(t, "busy@example.test")
	f.check(t, "busy@example.test")
	f.check(t, "down@example.test")
	f.check(t, "down@example.test")
	if n := f.p.probes.Load(); n != 6 {
		t.Errorf("%d probes, want 6: temporary failures are asked again", n)
	}
	// The local part's case is the server's business.
	f.check(t, "Bob@example.test")
	if n := f.p.probes.Load(); n != 7 {
		t.Errorf("%d probes, want 7", n)
	}
}

// TestExpiry: Postfix's lifetimes. Past its refresh time an answer still
// decides but is asked again in the background; past its expiry it is
// asked again before deciding.
func TestExpiry(t *testing.T) {
	cases := []struct {
		name            string
		rcpt            string
		refresh, expire time.Duration
		wantReply       string
	}{
		{"positive", "bob@example.test", PositiveRefresh, PositiveExpire, ""},
		{"negative", "eve@example.test", NegativeRefresh, NegativeExpire, "550 5.1.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			ask := func(wantProbes int32) {
				t.Helper()
				got := f.check(t, c.rcpt)
				if !strings.HasPrefix(got, c.wantReply) || (c.wantReply == "") != (got == "") {
					t.Errorf("reply %q, want %q...", got, c.wantReply)
				}
				f.v.bg.Wait() // a background refresh ends
				if n := f.p.probes.Load(); n != wantProbes {
					t.Errorf("%d probes, want %d", n, wantProbes)
				}
			}
			ask(1)
			f.clock.add(c.refresh - time.Second)
			ask(1) // fresh: from the cache
			f.clock.add(2 * time.Second)
			ask(2) // stale: decided from the cache, refreshed meanwhile
			ask(2) // the refreshed answer is fresh again
			f.clock.add(c.expire)
			ask(3) // expired: asked again first
		})
	}
}

// TestRefreshKeepsAnswerOnTempfail: a refresh that gets no answer leaves
// the old one in place.
func TestRefreshKeepsAnswerOnTempfail(t *testing.T) {
	f := newFixture(t)
	f.check(t, "bob@example.test")
	f.clock.add(PositiveRefresh + time.Hour)
	f.p.answers["bob@example.test"] = Answer{Err: errors.New("connection refused")}
	if got := f.check(t, "bob@example.test"); got != "" {
		t.Fatalf("stale positive answer: %q, want accepted", got)
	}
	f.v.bg.Wait()
	if got := f.check(t, "bob@example.test"); got != "" {
		t.Errorf("after a failed refresh: %q, want the old answer", got)
	}
}

// TestSingleflight: concurrent RCPTs for one address share one probe.
func TestSingleflight(t *testing.T) {
	f := newFixture(t)
	f.p.block = make(chan struct{})
	wait := f.checkAll(t, slices.Repeat([]string{"eve@example.test"}, 20))
	// Wait until every caller is waiting on the one flight.
	f.waitProbes(1)
	time.Sleep(20 * time.Millisecond) // let the others join; correctness does not depend on it
	close(f.p.block)
	replies := wait()
	if got := f.p.probes.Load(); got != 1 {
		t.Errorf("%d probes, want 1", got)
	}
	allRefused(t, replies)
}

// TestProbeLimit: at most Target.Limit probes through one route at once.
func TestProbeLimit(t *testing.T) {
	f := newFixture(t)
	f.p.target.Limit = 2
	f.p.block = make(chan struct{})
	wait := f.checkAll(t, []string{"u0@example.test", "u1@example.test", "u2@example.test"})
	f.waitProbes(2)
	time.Sleep(50 * time.Millisecond) // a third would have started by now
	if n := f.p.probes.Load(); n != 2 {
		t.Errorf("%d probes at once, want 2", n)
	}
	close(f.p.block)
	replies := wait()
	if n := f.p.probes.Load(); n != 3 {
		t.Errorf("%d probes in all, want 3", n)
	}
	allRefused(t, replies)
}

// TestNoPlace: a probe that finds no free place to its next hop within
// the timeout is a temporary failure, and the server is not asked.
func TestNoPlace(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.ProbeTimeout = 50 * time.Millisecond })
	f.p.target.Limit = 1
	f.v.mu.Lock()
	f.v.slotsFor(f.p.target) <- struct{}{} // taken by a probe that hangs
	f.v.mu.Unlock()
	if got := f.check(t, "bob@example.test"); !strings.HasPrefix(got, "450 4.1.1") {
		t.Errorf("reply %q, want 450 4.1.1", got)
	}
	if n := f.p.probes.Load(); n != 0 {
		t.Errorf("%d probes, want none", n)
	}
	if !strings.Contains(f.logs.String(), errBusy.Error()) {
		t.Errorf("no log of the probe that found no place")
	}
}

// TestSessionGone: a session that stops waiting gets a temporary failure,
// and the probe goes on for the others (and the cache).
func TestSessionGone(t *testing.T) {
	f := newFixture(t)
	f.p.block = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := f.v.Verify(ctx, f.log, "bob@example.test")
	if se := (*smtperr.Error)(nil); !errors.As(err, &se) || se.Code != 450 {
		t.Fatalf("Verify after the session went: %v", err)
	}
	close(f.p.block)
	f.v.bg.Wait()
	if got := f.check(t, "bob@example.test"); got != "" || f.p.probes.Load() != 1 {
		t.Errorf("got %q after %d probes, want the cached answer of the first", got, f.p.probes.Load())
	}
}

func TestEviction(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxEntries = 2 })
	f.check(t, "a@example.test")
	f.check(t, "b@example.test")
	f.check(t, "a@example.test") // a is now the most recently used
	f.check(t, "c@example.test") // evicts b
	f.check(t, "a@example.test")
	f.check(t, "c@example.test")
	if n := f.p.probes.Load(); n != 3 {
		t.Errorf("%d probes, want 3", n)
	}
	f.check(t, "b@example.test")
	if n := f.p.probes.Load(); n != 4 {
		t.Errorf("%d probes, want 4: b was evicted", n)
	}
	if n := f.v.cache.len(); n != 2 {
		t.Errorf("%d entries, want 2", n)
	}
}

// TestReloadDropsChangedHop: answers are a next hop's; a reload that
// moves the route (or turns verification off) drops them, one that keeps
// the next hop keeps them.
func TestReloadDropsChangedHop(t *testing.T) {
	f := newFixture(t)
	f.check(t, "bob@example.test")
	cfg := func(hop string, on bool) *config.Config {
		return &config.Config{Routes: []config.Route{{Domains: []string{"example.test"}, NextHop: hop, VerifyRecipients: on}}}
	}
	f.v.Reload(cfg("10.0.0.5:25", true))
	f.check(t, "bob@example.test")
	if n := f.p.probes.Load(); n != 1 {
		t.Errorf("same next hop: %d probes, want 1 (kept)", n)
	}
	f.v.Reload(cfg("10.0.0.6:25", true))
	if n := f.v.cache.len(); n != 0 {
		t.Errorf("next hop changed: %d entries left", n)
	}
	f.check(t, "bob@example.test")
	f.v.Reload(cfg("10.0.0.5:25", false))
	if n := f.v.cache.len(); n != 0 {
		t.Errorf("verification off: %d entries left", n)
	}
	// The cache is keyed by next hop: a route now leading elsewhere asks
	// there even before any reload dropped the old answers.
	f.check(t, "bob@example.test")
	f.p.target.Hop = "10.0.0.7:25"
	f.check(t, "bob@example.test")
	if n := f.p.probes.Load(); n != 4 {
		t.Errorf("%d probes, want 4", n)
	}
}

func TestLogLine(t *testing.T) {
	f := newFixture(t)
	f.check(t, "eve@example.test")
	f.check(t, "eve@example.test")
	log := f.logs.String()
	for _, want := range []string{
		`msg=verify rcpt=eve@example.test route=0 next_hop=10.0.0.5:25 host=mbox.test[127.0.0.1]:25 cached=false result=undeliverable reply="550 5.1.1 no such user"`,
		`cached=true result=undeliverable`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// TestSlotsPerRoute: two routes to one server, with different limits, each
// keep their own bound (one shared by hop alone was made anew at every
// probe, as the limits differ, and bounded nothing).
func TestSlotsPerRoute(t *testing.T) {
	f := newFixture(t)
	a := Target{Hop: "10.0.0.5:25", Route: 0, Limit: 1}
	b := Target{Hop: "10.0.0.5:25", Route: 1, Limit: 3}
	f.v.mu.Lock()
	defer f.v.mu.Unlock()
	sa, sb := f.v.slotsFor(a), f.v.slotsFor(b)
	if f.v.slotsFor(a) != sa || f.v.slotsFor(b) != sb || cap(sa) != 1 || cap(sb) != 3 {
		t.Error("a route's semaphore changed when another route to the same server was used")
	}
	a.Limit = 2 // a reload changed the concurrency
	if s := f.v.slotsFor(a); s == sa || cap(s) != 2 {
		t.Error("a new limit kept the old semaphore")
	}
}

// TestPolicyRefusalIsNoAnswer: a 5xx to RCPT whose enhanced code is of
// class X.7 (security or policy, RFC 3463) says the server refuses this
// gateway or its probe, not that the mailbox does not exist: a relay
// access denied (the gateway outside the server's mynetworks, the domain
// not among its destinations), or MAIL FROM:<> refused by a sender
// restriction that Postfix, with smtpd_delay_reject (its default),
// reports at RCPT. It is no answer about the address: 450 4.1.1 (or
// accepted with verify_tempfail: accept), not cached, logged as a
// problem; taken as undeliverable, every address would be refused with
// 550 5.1.1 for days after the server was put right.
func TestPolicyRefusalIsNoAnswer(t *testing.T) {
	cases := []struct{ name, rcpt string }{
		{"relay access denied", "relay@example.test"},
		{"null sender refused at RCPT", "delayed@example.test"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.p.answers["relay@example.test"] = Answer{Host: "mbox.test[127.0.0.1]:25",
				Rcpt: reply(554, "5.7.1", "<relay@example.test>: Relay access denied")}
			f.p.answers["delayed@example.test"] = Answer{Host: "mbox.test[127.0.0.1]:25",
				Rcpt: reply(554, "5.7.1", "<>: Sender address rejected: Access denied")}
			want := "450 4.1.1 <" + c.rcpt + ">: Recipient address rejected: unverified address: the mailbox server said: " +
				f.p.answers[c.rcpt].Rcpt.String()
			for i := range 2 {
				if got := f.check(t, c.rcpt); got != want {
					t.Errorf("RCPT %d: reply\n got %q\nwant %q", i+1, got, want)
				}
			}
			if n := f.p.probes.Load(); n != 2 {
				t.Errorf("%d probes, want 2: a policy refusal is not cached", n)
			}
			if log := f.logs.String(); !strings.Contains(log, "result=unverified") || !strings.Contains(log, "problem=") {
				t.Errorf("no warning naming the problem:\n%s", log)
			}
			f.p.target.TempAccept = true
			if got := f.check(t, c.rcpt); got != "" {
				t.Errorf("with verify_tempfail: accept: %q, want accepted", got)
			}
		})
	}
	// A mailbox-level 5xx stays undeliverable, with or without an
	// enhanced code.
	f := newFixture(t)
	f.p.answers["old@example.test"] = Answer{Rcpt: reply(550, "", "Unrouteable address")}
	f.p.answers["full@example.test"] = Answer{Rcpt: reply(552, "5.2.2", "mailbox full")}
	for _, rcpt := range []string{"old@example.test", "full@example.test", "eve@example.test"} {
		if got := f.check(t, rcpt); !strings.HasPrefix(got, "550 5.1.1") {
			t.Errorf("%s: %q, want 550 5.1.1", rcpt, got)
		}
	}
}

// TestSlowServerAnswerKept: a server behind that answers later than a
// session waits (a postscreen greet wait, a slow reverse lookup before
// its greeting) gets its probe finished all the same, and the answer
// cached for the client's next try, as Postfix's verify daemon does
// (smtpd stops polling after address_verify_poll_count, "450 4.1.1
// Address verification in progress", the probe goes on). Cut at the
// session's wait, such a server was never asked to the end: every try
// was 450, until the sender gave up and bounced.
func TestSlowServerAnswerKept(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Timeout = 50 * time.Millisecond })
	f.p.block = make(chan struct{})
	time.AfterFunc(300*time.Millisecond, func() { close(f.p.block) })
	if got := f.check(t, "bob@example.test"); !strings.HasPrefix(got, "450 4.1.1") {
		t.Errorf("first try: %q, want 450 4.1.1 (no answer yet)", got)
	}
	f.v.bg.Wait()
	if got := f.check(t, "bob@example.test"); got != "" {
		t.Errorf("next try: %q, want accepted from the answer that came meanwhile", got)
	}
	if n := f.p.probes.Load(); n != 1 {
		t.Errorf("%d probes, want 1", n)
	}
}

// TestMailRefusalLog: a refused MAIL FROM:<> is logged as what it is. A
// 4xx is a passing trouble (421 too many connections), no problem of the
// server's; a 5xx may have another reason than the null sender (a
// Postfix with smtpd_tls_security_level = encrypt answers "530 5.7.0 Must
// issue a STARTTLS command first" to a route with tls: none), so the line
// points at the reply rather than asserting the null sender was refused.
func TestMailRefusalLog(t *testing.T) {
	f := newFixture(t)
	f.p.answers["later@example.test"] = Answer{Mail: reply(421, "4.7.0", "too many connections from your host")}
	f.p.answers["tls@example.test"] = Answer{Mail: reply(530, "5.7.0", "Must issue a STARTTLS command first")}
	f.check(t, "later@example.test")
	f.check(t, "tls@example.test")
	var later, tls string
	for _, l := range strings.Split(f.logs.String(), "\n") {
		switch {
		case strings.Contains(l, "rcpt=later@"):
			later = l
		case strings.Contains(l, "rcpt=tls@"):
			tls = l
		}
	}
	if strings.Contains(later, "problem=") {
		t.Errorf("a 4xx to MAIL logged as the server's problem: %s", later)
	}
	if !strings.Contains(tls, `reply="530 5.7.0 Must issue a STARTTLS command first" problem="the server refused MAIL FROM:<>: its reply says why`) {
		t.Errorf("a 5xx to MAIL: %s", tls)
	}
}

// waitProbes waits (10 s at most: it turns a hang into a failure of the
// check after it, and measures nothing) until n probes have started.
func (f *fixture) waitProbes(n int32) {
	deadline := time.Now().Add(10 * time.Second)
	for f.p.probes.Load() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// checkAll checks each of addrs at once, each in its own goroutine; wait
// returns their replies, in order, once all have one.
func (f *fixture) checkAll(t *testing.T, addrs []string) (wait func() []string) {
	var wg sync.WaitGroup
	replies := make([]string, len(addrs))
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = f.check(t, a)
		}()
	}
	return func() []string { wg.Wait(); return replies }
}

// allRefused checks that every reply is the refusal of an unknown mailbox.
func allRefused(t *testing.T, replies []string) {
	t.Helper()
	for i, r := range replies {
		if !strings.HasPrefix(r, "550 5.1.1") {
			t.Errorf("caller %d: %q", i, r)
		}
	}
}
