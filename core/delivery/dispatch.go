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

// dispatch leases due messages and hands each to a goroutine of its own,
// at most queue.workers at a time, until ctx ends.
func (m *Manager) dispatch(ctx context.Context) {
	slots := make(chan struct{}, m.set.Load().workers)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
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
