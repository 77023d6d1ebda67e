package delivery

import (
	"context"
	"errors"
	"time"

	"github.com/portcullis-mta/portcullis/core/queue"
)

// idleWait bounds a sleep with nothing due, in case another process (the
// CLI) changed the queue without the store noticing.
const idleWait = time.Minute

// flushCounter is a store that counts flushes (queue.Dir.Flushes). A flush
// (`portcullis queue flush`) asks for a real attempt now: the destinations
// marked unreachable in the last minute (deadCache) are forgotten, as
// `postqueue -f` makes Postfix's qmgr flush its dead queues. Without it, a
// flush right after the next hop came back was answered from the cache
// with the old "connection refused", counted as an attempt, and pushed
// the message's next retry further away.
type flushCounter interface{ Flushes() uint64 }

// activeLimit bounds the messages leased at once: those being delivered
// and those waiting for a place at their destination (routes[].concurrency)
// or for a worker. Like Postfix's active queue (qmgr_message_active_limit),
// it is much larger than the worker count, so that a destination that is
// saturated (a slow or tarpitting next hop) parks its messages here
// without holding workers, and mail for other destinations still goes
// out at once. Each lease holds a file open: it is bounded all the same.
func activeLimit(workers int) int { return max(10*workers, 200) }

// dispatch leases due messages and hands each to a goroutine of its own,
// at most activeLimit at a time, until ctx ends. Workers (queue.workers)
// are taken later, per destination, once its route has a free place
// (sendGroup): a message waiting for a busy destination holds no worker,
// so it cannot hold up mail for another (head-of-line blocking). A waiting
// message keeps its lease, and so the at-least-once bookkeeping of
// deliver: its lease is updated (or released) when its attempt ends.
// Waiting messages hold at most half the leases, each destination its
// share; beyond it, messages are parked (park.go), so no backlog can fill
// them all.
func (m *Manager) dispatch(ctx context.Context) {
	slots := make(chan struct{}, activeLimit(cap(m.workers)))
	fc, _ := m.d.Queue.(flushCounter)
	var flushes uint64
	if fc != nil {
		flushes = fc.Flushes()
	}
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if fc != nil {
			if n := fc.Flushes(); n != flushes {
				flushes = n
				m.dead.clear()
				m.park.clear()
			}
		}
		l, err := m.d.Queue.Lease(m.d.Now())
		if err == nil {
			m.running.Add(1)
			go func() {
				defer m.running.Done()
				defer func() { <-slots }()
				m.deliver(ctx, l)
				select {
				case m.kick <- struct{}{}:
				default:
				}
			}()
			continue
		}
		<-slots
		wait := idleWait
		if !errors.Is(err, queue.ErrEmpty) {
			m.log.Error("delivery: cannot lease from the queue", "err", err)
			wait = time.Second
		} else if next := m.d.Queue.NextDue(); !next.IsZero() {
			wait = min(wait, max(next.Sub(m.d.Now()), time.Millisecond))
		}
		m.sleep(ctx, wait)
	}
}

// worker waits for one of the queue.workers places, taken by a
// destination's transactions once its route has a place for them (so
// route place first, then worker: no worker waits for a route). Waiters
// are served in turn. Without Start (tests calling sendGroup directly)
// there is no limit.
func (m *Manager) worker(ctx context.Context) (func(), error) {
	if m.workers == nil {
		return func() {}, nil
	}
	select {
	case m.workers <- struct{}{}:
		return func() { <-m.workers }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (m *Manager) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-m.d.Queue.Wake():
	case <-m.kick:
	case <-ctx.Done():
	}
}
