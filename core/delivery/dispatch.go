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

// dispatch leases due messages and hands each to a goroutine of its own,
// at most queue.workers at a time, until ctx ends.
func (m *Manager) dispatch(ctx context.Context) {
	slots := make(chan struct{}, m.set.Load().workers)
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
