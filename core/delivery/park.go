package delivery

import (
	"slices"
	"sync"
	"time"

	"github.com/portcullis-mta/portcullis/core/delivery/smtpc"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// Parking. A destination that is slow or saturated (every place of its
// route's concurrency busy) keeps its messages waiting for a place while
// they stay leased (see dispatch). Left alone, a backlog for one such
// destination larger than the lease limit (activeLimit) would fill every
// lease slot with its messages, and mail for every other destination would
// wait behind it. So messages waiting for a place hold at most half the
// slots, and each destination its share of those (limiter.crowdedLocked);
// a message leased beyond that is not tried: it is parked. Its lease is given back unchanged on disk, due again in
// parkFor, and its ID joins the destination's parking list; each time a
// place at the destination frees, the first parked message is made due at
// once (Hasten), so the destination's own mail keeps flowing in order.
// Parking is not an attempt: nothing is counted, logged or written.
// Postfix's qmgr gets the same from its per-destination queues and round
// robin in the active queue.

// postponer is a lease that can be given back due later without a write:
// queue.Dir's.
type postponer interface{ Postpone(until time.Time) error }

// hastener is a store that can make a postponed message due at once.
type hastener interface {
	Hasten(id string, now time.Time) bool
}

// parkFor is how long a parked message waits at most: the fallback when
// no place frees at its destination in the meantime (its list was full).
// Each return of a parked message costs a lease (a file open, an envelope
// read) and most often another parking: long, so that a backlog of many
// thousands costs little, since the places that free bring messages back
// anyway.
const parkFor = 5 * time.Minute

// maxParked bounds a destination's parking list; the messages beyond it
// come back by parkFor alone.
const maxParked = 10000

// errParked is the outcome of a group whose destination already has its
// share of waiting messages. Never recorded.
var errParked = smtpc.NewReply(451, "4.4.5", "parked: its destination has as many messages waiting as it may")

// parkLot holds the parking lists, by destination key, in the order the
// messages were parked.
type parkLot struct {
	mu sync.Mutex
	m  map[string]*parkList
}

type parkList struct {
	ids []string
	in  map[string]bool
}

func newParkLot() *parkLot { return &parkLot{m: map[string]*parkList{}} }

// add appends id to key's list, unless it is there already (a message back
// by parkFor and parked again keeps its place) or the list is full.
func (p *parkLot) add(key, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.m[key]
	if l == nil {
		l = &parkList{in: map[string]bool{}}
		p.m[key] = l
	}
	if l.in[id] || len(l.ids) >= maxParked {
		return
	}
	l.ids = append(l.ids, id)
	l.in[id] = true
}

// pop takes the first ID of key's list.
func (p *parkLot) pop(key string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.m[key]
	if l == nil {
		return "", false
	}
	id := l.ids[0]
	l.ids[0] = ""
	l.ids = l.ids[1:]
	delete(l.in, id)
	if len(l.ids) == 0 {
		delete(p.m, key)
	}
	return id, true
}

// remove takes id off key's list.
func (p *parkLot) remove(key, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.m[key]
	if l == nil || !l.in[id] {
		return
	}
	delete(l.in, id)
	l.ids = slices.DeleteFunc(l.ids, func(x string) bool { return x == id })
	if len(l.ids) == 0 {
		delete(p.m, key)
	}
}

// clear forgets every list (a flush makes every message due anyway).
func (p *parkLot) clear() { p.drain() }

// drain empties every list and returns what they held.
func (p *parkLot) drain() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, l := range p.m {
		ids = append(ids, l.ids...)
	}
	clear(p.m)
	return ids
}

// unparkAll makes every parked message due at once: after a reload, whose
// routes may have given their destinations other keys, so that no place
// freeing would ever bring them back. They are leased again and parked by
// the new routes if need be.
func (m *Manager) unparkAll() {
	ids := m.park.drain()
	if h, ok := m.d.Queue.(hastener); ok {
		for _, id := range ids {
			h.Hasten(id, m.d.Now())
		}
	}
}

// unpark makes the first message parked for key due at once, if key has
// room for it. Messages delivered or leased meanwhile are skipped.
func (m *Manager) unpark(key string) {
	h, ok := m.d.Queue.(hastener)
	if !ok || m.lim.crowded(key) {
		return
	}
	for {
		id, ok := m.park.pop(key)
		if !ok || h.Hasten(id, m.d.Now()) {
			return
		}
	}
}

// parkedOnly reports whether every group of a message was parked: nothing
// was tried.
func parkedOnly(results [][]outcome) bool {
	for _, res := range results {
		for _, o := range res {
			if o.reply != errParked {
				return false
			}
		}
	}
	return len(results) > 0
}

// parkGroups puts env on the parking list of every destination that
// parked it.
func (m *Manager) parkGroups(s *settings, env *queue.Envelope, groups []*group, results [][]outcome) {
	var keys []string
	for i, g := range groups {
		if len(results[i]) > 0 && results[i][0].reply == errParked {
			m.park.add(g.key, env.ID)
			keys = append(keys, g.key)
		}
	}
	// A reload since the message was leased (under s) may have drained
	// the lists (unparkAll) before it was parked here, under a key its new
	// routes may never free: it would wait parkFor. Reload stores the new
	// settings before it drains, and the check comes after the parking, so
	// either the drain sees the message or this check sees the reload.
	if m.set.Load() != s {
		for _, k := range keys {
			m.park.remove(k, env.ID)
		}
		if h, ok := m.d.Queue.(hastener); ok {
			h.Hasten(env.ID, m.d.Now())
		}
	}
}
