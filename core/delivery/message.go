package delivery

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-mta/portcullis/core/delivery/smtpc"
	"github.com/portcullis-mta/portcullis/core/metrics"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// deliver makes one attempt at every pending recipient of the leased
// message, then records the outcome (and queues any DSN) before the lease
// ends: the DSN is committed first, so a crash can duplicate a DSN but
// never lose one.
func (m *Manager) deliver(ctx context.Context, l queue.Lease) {
	s := m.set.Load()
	env := l.Envelope()
	start := m.d.Now()
	if saved := m.unrec.take(env.ID); saved != nil {
		// An outcome that could not be recorded: recorded first, before
		// anything is sent (record keeps it again if it still cannot
		// be). The message is then due when that outcome said, and leased
		// again for what is left.
		restore(env, saved)
		m.commit(l, env)
		return
	}
	groups := m.groups(s, env)
	size := leaseSize(l)
	pp, canPark := l.(postponer)
	for _, g := range groups {
		g.size = size
		g.park = canPark
	}
	defer freeWorkers(groups)
	results := m.sendGroups(ctx, s, env, l, groups)
	if canPark && parkedOnly(results) && m.d.Now().Before(env.Received.Add(s.maxAge)) {
		// Nothing tried: given back unchanged, passed over until a place
		// frees at its destination (see parking). Past max_age it goes on
		// below, to expire.
		pp.Postpone(m.d.Now().Add(parkFor))
		m.parkGroups(s, env, groups, results) // after: a place freeing now finds it not leased
		return
	}
	if len(groups) > 0 && untried(results) && !parkedOnly(results) {
		// Stopped while it waited for a place at its destination or for a
		// worker (or while connecting): nothing happened to record, and
		// its last reply stays the last hop's. It is due again at once.
		l.Release()
		return
	}
	now := m.d.Now()
	t := m.applyAll(env, groups, results, start, now)
	expired := m.reschedule(s, env, now, t)
	m.logExpired(env, expired, now)
	m.notify(s, env, append(t.failed, expired...), t.relayed, now, l.Open)
	m.commit(l, env)
}

// leaseSize is the message's size, counted at most once for all its
// groups, and only if one needs it: a lease of the queue's knows it,
// another's message is read through.
func leaseSize(l queue.Lease) func() (int64, error) {
	return sync.OnceValues(func() (int64, error) {
		if s, ok := l.(interface{ Size() int64 }); ok { // queue's leases know it
			return s.Size(), nil
		}
		return countBytes(l.Open)
	})
}

// sendGroups runs every group's transaction at once and returns their
// outcomes, in the groups' order. A transaction's worker is given back
// when it ends, except the message's last one's: that is kept until the
// outcome is recorded (the lease updated; deliver's freeWorkers), so that
// the messages a crash can find sent but not yet recorded, and so send
// again, are at most as many as the workers.
func (m *Manager) sendGroups(ctx context.Context, s *settings, env *queue.Envelope, l queue.Lease, groups []*group) [][]outcome {
	results := make([][]outcome, len(groups))
	var wg sync.WaitGroup
	var running atomic.Int32
	running.Store(int32(len(groups)))
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			results[i] = m.sendGroup(ctx, s, env, l.Open, g)
			if results[i][0].reply != errParked {
				metrics.Active().DeliveryTook(time.Since(t0))
			}
			if running.Add(-1) > 0 && g.free != nil {
				g.free()
				g.free = nil
			}
		}()
	}
	wg.Wait()
	return results
}

// freeWorkers gives back the workers the groups still hold: the last
// transaction's, once the outcome is recorded (see sendGroups).
func freeWorkers(groups []*group) {
	for _, g := range groups {
		if g.free != nil {
			g.free()
		}
	}
}

// tally is what the outcomes of one attempt at a message add up to.
type tally struct {
	failed  []*queue.Recipient // failed for good now: for the DSN
	relayed []*queue.Recipient // delivered, NOTIFY=SUCCESS, to a hop that does not report success itself
	// interrupted: a delivery did not happen (cut short by shutdown,
	// requeued), so this was no attempt. parked: recipients not tried
	// because their destination has its share of waiting messages (see
	// parking); deferred: tried and still pending (a temporary failure).
	interrupted, parked, deferred bool
}

// applyAll records every outcome on its recipient, counts and logs it,
// and adds them up. A parked recipient was not tried: there is nothing to
// record or log.
func (m *Manager) applyAll(env *queue.Envelope, groups []*group, results [][]outcome, start, now time.Time) tally {
	var t tally
	for i, g := range groups {
		for j, r := range g.rcpts {
			o := results[i][j]
			if o.reply == errParked {
				t.parked = true
				continue
			}
			t.interrupted = t.interrupted || cutShort(o.reply)
			countAttempt(o)
			if m.apply(env, r, o, now) {
				t.failed = append(t.failed, r)
			}
			t.deferred = t.deferred || r.Status == queue.RcptPending
			if o.ok && !o.dsn && wants(r, "SUCCESS") {
				t.relayed = append(t.relayed, r)
			}
			m.logAttempt(env, r, o, start, now)
		}
	}
	return t
}

// reschedule counts the attempt and sets the next one (schedule); it
// returns the recipients that expired. With only parked recipients left
// the message is due again at once, to be parked alone (see schedule);
// with a deferred one, it waits for its retry as a whole, as an attempt.
func (m *Manager) reschedule(s *settings, env *queue.Envelope, now time.Time, t tally) []*queue.Recipient {
	parked := t.parked && !t.deferred
	if !t.interrupted && !parked {
		env.Attempts++
	}
	return m.schedule(s, env, now, t.interrupted, parked)
}

// logExpired logs the recipients that expired in the queue, each on the
// delivery line it would have had.
func (m *Manager) logExpired(env *queue.Envelope, expired []*queue.Recipient, now time.Time) {
	for _, r := range expired {
		metrics.Active().Expired()
		m.log.Info("delivery", "queue_id", env.ID, "rcpt", policy.WirePath(r.Addr), "reply", r.LastReply, "status", "expired",
			"delay", now.Sub(env.Received).Round(time.Millisecond).String(), "attempts", r.Attempts)
	}
}

// commit records the outcome on the lease. When every recipient is
// settled the message has left the queue: the last line of its trace, as
// Postfix's qmgr "removed".
func (m *Manager) commit(l queue.Lease, env *queue.Envelope) {
	if m.record(l, env) && len(env.Pending()) == 0 {
		m.log.Info("removed", "queue_id", env.ID)
	}
}

// untried reports whether every outcome is a shutdown before any hop
// answered.
func untried(results [][]outcome) bool {
	for _, res := range results {
		for _, o := range res {
			if !cutShort(o.reply) || o.hop != "" {
				return false
			}
		}
	}
	return true
}

// cutShort reports the outcome of a delivery that did not happen: cut by
// shutdown, requeued because the routes changed while it waited, or parked.
func cutShort(r *smtpc.Reply) bool { return r == errShutdown || r == errRequeued || r == errParked }

// maxTxnRcpts caps the recipients of one transaction: RFC 5321 4.5.3.1.8
// makes servers take at least 100, and many take no more.
const maxTxnRcpts = 100

// groups splits the pending recipients by destination, in order, at most
// maxTxnRcpts to a group.
func (m *Manager) groups(s *settings, env *queue.Envelope) []*group {
	var out []*group
	by := map[string]*group{}
	for _, r := range env.Pending() {
		d := domainOf(r.Addr)
		rt := pick(s.routes, s.local, d)
		key := rt.destKey(d)
		g := by[key]
		if g == nil || len(g.rcpts) == maxTxnRcpts {
			g = &group{key: key, rt: rt, domain: d}
			by[key] = g
			out = append(out, g)
		}
		g.rcpts = append(g.rcpts, r)
	}
	return out
}

// apply records o on r and reports whether r has now failed for good.
func (m *Manager) apply(env *queue.Envelope, r *queue.Recipient, o outcome, now time.Time) bool {
	if o.reply == nil {
		o.reply = smtpc.NewReply(451, "4.3.0", "no reply")
	}
	if o.reply == errRequeued || o.reply == errParked {
		return false // not tried: its last reply stays its last hop's
	}
	r.LastReply, r.LastLocal = o.reply.String(), o.reply.Local
	if o.hop != "" {
		r.LastHop = o.hop
	}
	if o.reply == errShutdown {
		return false
	}
	r.Attempts++
	switch {
	case o.ok:
		r.Status = queue.RcptDelivered
	case o.reply.Permanent():
		r.Status = queue.RcptFailed
		return true
	}
	return false
}

// schedule sets the next attempt for what is still pending, or fails it
// when the message is older than max_age (returned for the DSN). A message
// whose only pending recipients were parked is due again at once: leased
// again, they alone are parked, which writes nothing. Its disk
// NextAttempt cannot say "parked": a later one there is another process's
// reschedule to the queue, which Hasten could not bring forward.
func (m *Manager) schedule(s *settings, env *queue.Envelope, now time.Time, interrupted, parked bool) []*queue.Recipient {
	pending := env.Pending()
	if len(pending) == 0 {
		return nil
	}
	if interrupted {
		env.NextAttempt = now // due again as soon as we run again
		return nil
	}
	expiry := env.Received.Add(s.maxAge)
	if !now.Before(expiry) {
		for _, r := range pending {
			r.Status = queue.RcptFailed
			r.LastReply, r.LastLocal = expired(r.LastReply).String(), true
		}
		return pending
	}
	next := now.Add(s.retryAfter(env.Attempts))
	if parked {
		next = now // leased again at once, and parked then without a write
	}
	if next.After(expiry) {
		next = expiry // one last try at max_age
	}
	env.NextAttempt = next
	return nil
}

// expired is the reply a recipient gets when its message times out: the
// last temporary reply, with the status RFC 3463 gives expiry (X.4.7),
// permanent now that it failed. It is ours, not a hop's: the DSN says so
// (dsnDiagnostic).
func expired(last string) *smtpc.Reply {
	if last == "" {
		return smtpc.NewReply(554, "5.4.7", expiredText)
	}
	return smtpc.NewReply(554, "5.4.7", expiredText+"; last reply: %s", last)
}

const expiredText = "message expired in queue"

// countAttempt records one recipient's attempt (one cut short by shutdown
// was not an attempt).
func countAttempt(o outcome) {
	switch {
	case cutShort(o.reply):
	case o.ok:
		metrics.Active().Delivery(metrics.Sent)
	case o.reply != nil && o.reply.Permanent():
		metrics.Active().Delivery(metrics.Bounced)
	default:
		metrics.Active().Delivery(metrics.Deferred)
	}
}
