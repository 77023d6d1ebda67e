package dnsbl

import (
	"sync"
	"time"
)

// outcome is what one query name gave: the A answers (as 32-bit values)
// and, when they count as a listing, the TXT reason.
type outcome struct {
	addrs  []uint32
	reason string
	txt    bool // the TXT record was asked (reason is what it said)
}

// serves reports whether o, from the cache, answers a query of zone z.
// An outcome cached when the zone's codes did not count its answer had no
// reason asked; a new config (which keeps the cache) whose codes count
// it asks again, rather than list the client without a reason for the
// rest of the TTL.
//
// Nor does an answer cached for a block zone serve the same zone made an
// allow list: 127.0.0.255 is an ordinary code to the one and a refusal
// to the other (dnswlRefused), and would read as a DNSWL pass.
func (o outcome) serves(z *zone) bool {
	for _, a := range o.addrs {
		if z.allow && a == dnswlRefused {
			return false
		}
	}
	if o.txt {
		return true
	}
	for _, a := range o.addrs {
		if z.counts(a) {
			return false
		}
	}
	return true
}

// cache keeps outcomes for their DNS TTL (RFC 1035 3.2.1; negative answers
// RFC 2308 5), bounded in size. Failures are never cached.
type cache struct {
	mu   sync.Mutex
	max  int
	m    map[string]cacheEntry
	now  func() time.Time
	hits uint64
}

type cacheEntry struct {
	o       outcome
	expires time.Time
}

func newCache(max int, now func() time.Time) *cache {
	return &cache{max: max, m: map[string]cacheEntry{}, now: now}
}

func (c *cache) get(key string) (outcome, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return outcome{}, false
	}
	if !c.now().Before(e.expires) {
		delete(c.m, key)
		return outcome{}, false
	}
	c.hits++
	return e.o, true
}

func (c *cache) put(key string, o outcome, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// max under the lock: a new config sets it while checks run.
	if c.max <= 0 {
		return
	}
	now := c.now()
	if len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		// Still full: drop arbitrary entries (map order) rather than grow.
		for k := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = cacheEntry{o, now.Add(ttl)}
}
