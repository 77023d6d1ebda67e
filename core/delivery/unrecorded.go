package delivery

import (
	"sync"
	"time"

	"github.com/portcullis-mta/portcullis/core/queue"
)

// Outcomes that could not be recorded. When Lease.Update fails (the spool
// disk is full, out of file descriptors, EIO), the message stays queued as
// its file says: every recipient still pending there. Given back as it
// was, it was due at once and leased again at once: its recipients
// already delivered got a copy per attempt, hundreds a second, until the
// disk had room. So the outcome is kept here, in memory, and the message
// is passed over for recordRetry; leased again, what happened is applied
// (restore) and recorded before anything is sent: a recipient delivered
// is not sent again, a retry not yet due is not made early. Only a restart before the record is written loses this,
// and then the message is sent again, as after any crash: at least once.

// recordRetry is how long a message whose outcome could not be recorded
// is passed over before the record is tried again. A variable for tests.
var recordRetry = 30 * time.Second

// maxUnrecorded bounds the outcomes kept; beyond it a message is only
// passed over.
const maxUnrecorded = 100000

type unrecorded struct {
	mu sync.Mutex
	m  map[string]*queue.Envelope
}

func newUnrecorded() *unrecorded { return &unrecorded{m: map[string]*queue.Envelope{}} }

func (u *unrecorded) put(env *queue.Envelope) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.m) < maxUnrecorded || u.m[env.ID] != nil {
		u.m[env.ID] = env
	}
}

func (u *unrecorded) take(id string) *queue.Envelope {
	u.mu.Lock()
	defer u.mu.Unlock()
	env := u.m[id]
	delete(u.m, id)
	return env
}

// restore applies to env, as its file gives it, the outcome saved for it.
// Recipients are matched by position and address; a file another process
// changed meanwhile (a `queue bounce` settled a recipient) keeps what it
// settled.
func restore(env, saved *queue.Envelope) {
	if len(saved.Rcpts) != len(env.Rcpts) {
		return
	}
	for i, r := range env.Rcpts {
		s := saved.Rcpts[i]
		if s.Addr != r.Addr || r.Status != queue.RcptPending {
			continue
		}
		*r = *s
	}
	env.Attempts = max(env.Attempts, saved.Attempts)
	env.DelayNotified = env.DelayNotified || saved.DelayNotified
	env.NextAttempt = saved.NextAttempt
}

// record updates l with env, the outcome of an attempt; when that fails,
// the outcome is kept and the message passed over (see above).
func (m *Manager) record(l queue.Lease, env *queue.Envelope) bool {
	err := l.Update(env)
	if err == nil {
		return true
	}
	m.unrec.put(env)
	retry := m.d.Now().Add(recordRetry)
	m.log.Error("delivery: cannot record delivery state; the outcome is kept in memory and the record tried again",
		"queue_id", env.ID, "err", err, "retry", recordRetry.String())
	if p, ok := l.(postponer); ok {
		p.Postpone(retry)
	} else {
		l.Release()
	}
	return false
}
