package sdk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// DefaultMessageBudget is the bytes of messages that the Check calls of one
// plugin process hold whole in memory at once (Message.ReadAll), unless
// the plugin sets another with SetMessageBudget.
//
// The gateway takes up to 100 connections at once and messages of up to
// 25 MiB (its defaults), and a stage that walks a message holds about
// three times its size while it does (the raw bytes, the decoded parts,
// their text): without a bound, a burst of large messages took a plugin
// past 2 GB. 64 MiB lets two messages of the default maximum size, or
// thousands of ordinary ones, be read at once: about 200 MB live, which
// the garbage collector's headroom makes up to twice that in the process
// (10 concurrent 20 MB messages peaked at 390 MB, where they took 910 MB
// unbounded). More would not be faster: the gateway starts a plugin with
// GOMAXPROCS=1, and concurrent calls share one CPU. A message larger than
// the budget takes all of it.
const DefaultMessageBudget = 64 << 20

// budget is a process-wide bound on bytes held whole. semaphore.Weighted
// serves its waiters in order (FIFO): a burst of large messages passes one
// after another within the stage timeout, where letting them all in at
// once made every one of them time out together on the one CPU.
type budget struct {
	sem  *semaphore.Weighted
	size int64
}

var msgBudget atomic.Pointer[budget]

func init() { SetMessageBudget(DefaultMessageBudget) }

// SetMessageBudget sets the bytes of messages that the Check calls of this
// plugin hold whole in memory at once (see Message.ReadAll); n <= 0 sets
// DefaultMessageBudget. Call it in main, before Serve: calls already
// holding a share of the old budget give it back to the old one.
func SetMessageBudget(n int64) {
	if n <= 0 {
		n = DefaultMessageBudget
	}
	msgBudget.Store(&budget{sem: semaphore.NewWeighted(n), size: n})
}

// errCallOver refuses a read by a goroutine that outlived its Check call.
var errCallOver = errors.New("sdk: the message is read after its Check call returned")

// hold is one Check call's share of the message budget. Serve gives each
// data-phase call one and returns its share when Check returns, so a stage
// cannot leak it, whatever it does with its goroutines.
type hold struct {
	mu   sync.Mutex
	b    *budget
	n    int64
	over bool // the Check call returned
	// ended is done when the call returns: a read still waiting for the
	// budget then (in a goroutine the stage left behind) stops waiting.
	ended  context.Context
	endNow context.CancelFunc
	// turn lets one read of the call take at a time: a second read in
	// another goroutine waits for the first and then finds the share
	// taken, instead of waiting in the budget's line for bytes its own
	// call holds (and every later call of the plugin behind it).
	turn chan struct{}
}

func newHold() *hold {
	h := &hold{turn: make(chan struct{}, 1)}
	h.ended, h.endNow = context.WithCancel(context.Background())
	return h
}

// take makes the call's share at least want bytes (all of the budget if
// want exceeds it), waiting in line for it until ctx is done or the call
// returns. A call reading its message twice takes its share once. One that
// needs more than it holds (a partial read, then a whole one) gives its
// share back and waits in line for the whole: waiting while holding bytes
// that a call ahead of it waits for would stall both until their timeouts.
// The lock is never held while waiting, so the call's end (release) never
// waits behind a read.
func (h *hold) take(ctx context.Context, want int64) error {
	select {
	case h.turn <- struct{}{}:
		defer func() { <-h.turn }()
	case <-h.ended.Done():
		return errCallOver
	case <-ctx.Done():
		return fmt.Errorf("sdk: waiting for the message budget: %w", ctx.Err())
	}
	h.mu.Lock()
	if h.over {
		h.mu.Unlock()
		return errCallOver
	}
	if h.b == nil {
		h.b = msgBudget.Load()
	}
	b := h.b
	want = min(want, b.size)
	if want <= h.n {
		h.mu.Unlock()
		return nil
	}
	if h.n > 0 {
		b.sem.Release(h.n)
		h.n = 0
	}
	h.mu.Unlock()

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(h.ended, cancel)
	defer stop()
	if err := b.sem.Acquire(wctx, want); err != nil {
		if ctx.Err() == nil && h.ended.Err() != nil {
			return errCallOver
		}
		return fmt.Errorf("sdk: waiting for %d bytes of the message budget: %w", want, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.over {
		b.sem.Release(want)
		return errCallOver
	}
	h.n = want // the turn kept other reads of the call from taking meanwhile
	return nil
}

// release gives the share back; the hold takes no more, and a read still
// waiting for the budget stops.
func (h *hold) release() {
	h.endNow()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.over = true
	if h.n > 0 {
		h.b.sem.Release(h.n)
		h.n = 0
	}
}

// release ends the message's Check call: its share of the budget is given
// back and it takes no more.
func (m *Message) release() {
	if m != nil && m.hold != nil {
		m.hold.release()
	}
}
