package queue

import (
	"container/heap"
	"slices"
	"time"
)

// entry is what the in-memory index keeps of a message: just enough to
// schedule it. Envelopes are read from disk when needed, so a large queue
// costs little memory.
type entry struct {
	id     string
	next   time.Time
	leased bool       // by this Dir
	pos    int        // index in the heap, -1 when not in it
	seq    uint64     // Dir.seq when this Dir last changed the entry
	in     *intakeRef // where it lies in the intake log; nil for a message file
}

// entryHeap orders entries by due time, then ID (arrival order).
type entryHeap []*entry

func (h entryHeap) Len() int { return len(h) }
func (h entryHeap) Less(i, j int) bool {
	if !h[i].next.Equal(h[j].next) {
		return h[i].next.Before(h[j].next)
	}
	return h[i].id < h[j].id
}
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.pos = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.pos = -1
	return e
}

// insert adds or reschedules id (d.mu held). A leased entry keeps its lease.
func (d *Dir) insert(id string, next time.Time) *entry {
	d.seq++
	e := d.idx[id]
	if e == nil {
		e = &entry{id: id, pos: -1}
		d.idx[id] = e
	}
	e.next, e.seq = next, d.seq
	switch {
	case e.leased:
	case e.pos >= 0:
		heap.Fix(&d.due, e.pos)
	default:
		heap.Push(&d.due, e)
	}
	return e
}

// drop forgets id (d.mu held).
func (d *Dir) drop(id string) {
	d.seq++
	e := d.idx[id]
	if e == nil {
		return
	}
	if e.pos >= 0 {
		heap.Remove(&d.due, e.pos)
	}
	delete(d.idx, id)
}

// unlease puts a leased entry back in the schedule at next.
func (d *Dir) unlease(e *entry, next time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e.leased = false
	if d.idx[e.id] != e { // dropped meanwhile (a rescan saw it gone)
		return
	}
	d.insert(e.id, next)
}

// Hasten makes id due at now (the clock its leases are taken by) if this
// Dir has it scheduled later and not leased (a message Postpone passed
// over), and wakes the Dir's waiters.
// It reports whether it did: false for a message leased, gone, or due
// already. Only this Dir's schedule changes; nothing is written.
func (d *Dir) Hasten(id string, now time.Time) bool {
	d.mu.Lock()
	e := d.idx[id]
	ok := e != nil && !e.leased && e.pos >= 0 && e.next.After(now)
	if ok {
		d.insert(id, now)
	}
	d.mu.Unlock()
	if ok {
		d.signal()
	}
	return ok
}

// NextDue is the earliest NextAttempt of the messages not leased (zero if
// none). A worker sleeps until then or until Wake.
func (d *Dir) NextDue() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.due) == 0 {
		return time.Time{}
	}
	return d.due[0].next
}

// merge folds a rescan into the index. found is the directory as read
// after seq was startSeq: entries this Dir changed since then are newer
// than the scan and kept as they are.
//
// Messages that came or went this way (a `queue delete`, the DSN of a
// `queue bounce`, a quarantine release) are logged with their queue_id,
// so that the daemon's log traces them too: the command's own log lines
// go to its terminal.
func (d *Dir) merge(found map[string]time.Time, startSeq uint64) {
	var added, removed []string
	d.mu.Lock()
	for id, e := range d.idx {
		if _, ok := found[id]; !ok && !e.leased && e.in == nil && e.seq <= startSeq {
			d.drop(id)
			removed = append(removed, id)
		}
	}
	for id, next := range found {
		e := d.idx[id]
		if e == nil && !d.committing[id] {
			added = append(added, id)
		}
		if e == nil || (!e.leased && e.seq <= startSeq && !e.next.Equal(next)) {
			d.insert(id, next)
		}
	}
	d.mu.Unlock()
	slices.Sort(removed)
	slices.Sort(added)
	for _, id := range removed {
		d.log.Info("queue: removed by another process", "queue_id", id)
	}
	for _, id := range added {
		d.log.Info("queue: added by another process", "queue_id", id)
	}
}
