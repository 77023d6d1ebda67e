package dnsresolve

import (
	"sync"
	"time"
)

type cacheKey struct {
	name  string
	qtype uint16
}

type cacheEntry struct {
	a       *answer
	expires time.Time
}

// cache keeps answers for their TTL. It is bounded: when full, expired
// entries go first, then arbitrary ones (Go's map order), which is enough to
// stop a flood of distinct names from growing memory without bound.
type cache struct {
	mu   sync.Mutex
	max  int
	now  func() time.Time
	data map[cacheKey]cacheEntry
}

func newCache(max int, now func() time.Time) *cache {
	return &cache{max: max, now: now, data: make(map[cacheKey]cacheEntry)}
}

func (c *cache) get(k cacheKey) (*answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.data[k]
	if !ok {
		return nil, false
	}
	if !c.now().Before(e.expires) {
		delete(c.data, k)
		return nil, false
	}
	return e.a, true
}

func (c *cache) put(k cacheKey, a *answer) {
	if a.ttl == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.data) >= c.max {
		c.evict(now)
	}
	c.data[k] = cacheEntry{a: a, expires: now.Add(time.Duration(a.ttl) * time.Second)}
}

// evict frees about a tenth of the cache, expired entries first.
func (c *cache) evict(now time.Time) {
	want := max(1, c.max/10)
	for k, e := range c.data {
		if !now.Before(e.expires) {
			delete(c.data, k)
			want--
		}
	}
	for k := range c.data {
		if want <= 0 {
			return
		}
		delete(c.data, k)
		want--
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.data)
}
