package verify

import (
	"container/list"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-mta/portcullis/core/delivery/smtpc"
)

// entry is one cached answer: the server took the address (ok) or
// refused it for good. Temporary failures are never cached.
type entry struct {
	key   string
	ok    bool
	reply *smtpc.Reply // the server's reply to RCPT
	host  string       // who gave it
	at    time.Time    // when
}

// expire and refresh are the entry's lifetimes: past refresh it is still
// used but asked again in the background, past expire it is not used.
func (e *entry) expire() time.Duration {
	if e.ok {
		return PositiveExpire
	}
	return NegativeExpire
}

func (e *entry) refresh() time.Duration {
	if e.ok {
		return PositiveRefresh
	}
	return NegativeRefresh
}

// cache holds at most max entries, the least recently used going first.
// It lives in memory: a restart starts empty.
type cache struct {
	mu  sync.Mutex
	max int
	lru *list.List // of *entry, most recently used at the front
	by  map[string]*list.Element
}

func newCache(max int) *cache {
	return &cache{max: max, lru: list.New(), by: map[string]*list.Element{}}
}

// get returns the entry of key that has not expired at now.
func (c *cache) get(key string, now time.Time) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.by[key]
	if !ok {
		return nil
	}
	e := el.Value.(*entry)
	if age := now.Sub(e.at); age >= e.expire() || age < 0 {
		// A clock stepped back makes no entry live forever.
		c.lru.Remove(el)
		delete(c.by, key)
		return nil
	}
	c.lru.MoveToFront(el)
	cp := *e
	return &cp
}

// put stores e, evicting the least recently used entry when full.
func (c *cache) put(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.by[e.key]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.by[e.key] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.by, old.Value.(*entry).key)
	}
}

// len is the number of entries.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// dropHops removes the entries of next hops not in keep and returns how
// many went.
func (c *cache) dropHops(keep map[string]bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, el := range c.by {
		hop, _, _ := strings.Cut(k, " ")
		if !keep[hop] {
			c.lru.Remove(el)
			delete(c.by, k)
			n++
		}
	}
	return n
}
