package delivery

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/portcullis-mta/portcullis/core/delivery/smtpc"
)

// Connection reuse: a destination's idle connections wait here for the
// next message to it. Servers drop idle clients after a while (Postfix
// smtpd after 300s), so we keep ours much shorter and close them tidily.
const (
	idleTimeout = 20 * time.Second
	maxUses     = 100 // a fresh session now and then keeps long-lived state bounded on both sides
)

// conn is an open, greeted (and possibly TLS'd and authenticated) session
// with a next hop.
type conn struct {
	c     *smtpc.Client
	key   string // destination
	host  string // the next hop's name (MX host or route host)
	addr  string // ip:port
	tls   bool
	plain bool // opportunistic route, TLS skipped after a failed handshake
	dsn   bool // the next hop offers DSN (RFC 3461)
	uses  int
	since time.Time // idle since
}

func (c *conn) hop() string { return c.host + "[" + c.addr + "]" }

type pool struct {
	mu   sync.Mutex
	idle map[string][]*conn
}

func newPool() *pool { return &pool{idle: map[string][]*conn{}} }

// get returns the most recently used idle connection to key, or nil.
func (p *pool) get(key string) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.idle[key]
	if len(l) == 0 {
		return nil
	}
	c := l[len(l)-1]
	if len(l) == 1 {
		delete(p.idle, key)
	} else {
		p.idle[key] = l[:len(l)-1]
	}
	return c
}

// put keeps c for reuse, up to limit idle connections per destination.
func (p *pool) put(c *conn, limit int, now time.Time) {
	if c.uses >= maxUses {
		go c.c.Quit()
		return
	}
	c.since = now
	p.mu.Lock()
	if len(p.idle[c.key]) < limit {
		p.idle[c.key] = append(p.idle[c.key], c)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		go c.c.Quit()
	}
}

// expire says QUIT to connections idle since before cutoff (all, if zero).
func (p *pool) expire(cutoff time.Time) {
	var old []*conn
	p.mu.Lock()
	for k, l := range p.idle {
		keep := l[:0]
		for _, c := range l {
			if cutoff.IsZero() || c.since.Before(cutoff) {
				old = append(old, c)
			} else {
				keep = append(keep, c)
			}
		}
		if len(keep) == 0 {
			delete(p.idle, k)
		} else {
			p.idle[k] = keep
		}
	}
	p.mu.Unlock()
	for _, c := range old {
		c.c.Quit()
	}
}

func (p *pool) closeAll() { p.expire(time.Time{}) }

func (p *pool) janitor(ctx context.Context, now func() time.Time) {
	t := time.NewTicker(idleTimeout / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.expire(now().Add(-idleTimeout))
		}
	}
}

// limiter caps concurrent transactions per destination (routes[].concurrency)
// and, once active is set (Start, with a store that can park), the
// messages that wait for a place (see crowdedLocked).
type limiter struct {
	mu      sync.Mutex
	m       map[string]*slot
	total   int // refs over every key
	waiting int // over every key, the refs beyond its places: messages waiting for one
	active  int // the lease limit (activeLimit); 0: nothing parked
}

type slot struct {
	ch   chan struct{} // its capacity is the destination's places
	refs int           // holders and waiters
}

// waiters is how many of s's messages wait for a place.
func (s *slot) waiters() int { return max(0, s.refs-cap(s.ch)) }

func newLimiter() *limiter { return &limiter{m: map[string]*slot{}} }

// errCrowded: the destination already has its share of waiting messages;
// see parking.
var errCrowded = errors.New("delivery: destination has its share of the messages waiting for a place")

// acquire waits for a free place at key; the returned func gives it back.
// With park, a destination that already has its share of waiting messages
// is not waited for: errCrowded at once.
func (l *limiter) acquire(ctx context.Context, key string, n int, park bool) (func(), error) {
	l.mu.Lock()
	s := l.m[key]
	if park && s != nil && l.crowdedLocked(s) {
		l.mu.Unlock()
		return nil, errCrowded
	}
	if s == nil {
		s = &slot{ch: make(chan struct{}, n)}
		l.m[key] = s
	}
	l.join(s)
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		l.leave(key, s)
		l.mu.Unlock()
	}
	select {
	case s.ch <- struct{}{}:
		return func() { <-s.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// join and leave count a message in and out of s (l.mu held).
func (l *limiter) join(s *slot) {
	s.refs++
	l.total++
	if s.refs > cap(s.ch) {
		l.waiting++
	}
}

func (l *limiter) leave(key string, s *slot) {
	if s.refs > cap(s.ch) {
		l.waiting--
	}
	l.total--
	if s.refs--; s.refs == 0 {
		delete(l.m, key)
	}
}

// crowded reports whether key has its share of waiting messages now.
func (l *limiter) crowded(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[key]
	return s != nil && l.crowdedLocked(s)
}

// crowdedLocked reports whether one more message for s would wait beyond
// its share (l.mu held). Messages waiting for a place, all destinations
// together, hold at most half the lease slots: the other half stays for
// messages in transaction and for destinations with a free place, however
// many destinations back up. A destination with every place busy may add
// waiters up to half of what the others leave of that half, and one at
// least while any is left: one backlog takes a quarter of the slots, a
// second an eighth, and so on. A message with a free place never waits:
// it is never parked.
func (l *limiter) crowdedLocked(s *slot) bool {
	if l.active == 0 || s.refs < cap(s.ch) {
		return false
	}
	left := l.active/2 - (l.waiting - s.waiters()) // of the waiting half, what the others leave
	allowed := min(left, max(1, left/2))
	return s.waiters() >= allowed
}

// deadFor is how long a destination whose every hop just failed is skipped
// (capped by the first retry interval, so a retry always tries again).
const deadFor = time.Minute

// deadCache remembers destinations that could not be reached, with the
// outcome that said so (the reply, and the hop that gave it, for the log).
type deadCache struct {
	mu sync.Mutex
	m  map[string]deadEntry
}

type deadEntry struct {
	o     outcome
	until time.Time
}

func newDeadCache() *deadCache { return &deadCache{m: map[string]deadEntry{}} }

func (d *deadCache) get(key string, now time.Time) (outcome, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.m[key]
	if !ok {
		return outcome{}, false
	}
	if !now.Before(e.until) {
		delete(d.m, key)
		return outcome{}, false
	}
	return e.o, true
}

// put marks key dead until until with o, the last hop's failure.
func (d *deadCache) put(key string, o outcome, until time.Time) {
	if o.reply == nil || cutShort(o.reply) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, e := range d.m { // stays small: only destinations down right now
		if !until.Before(e.until.Add(deadFor)) {
			delete(d.m, k)
		}
	}
	d.m[key] = deadEntry{o: outcome{reply: o.reply, hop: o.hop, tls: o.tls}, until: until}
}

// clear forgets every destination (the config that failed them is gone).
func (d *deadCache) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.m)
}
