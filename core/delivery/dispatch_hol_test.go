package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// Head-of-line blocking (Postfix's qmgr has none): messages waiting for a
// place at a saturated destination (routes[].concurrency) hold no worker,
// so a message for another destination goes out while they wait. Here
// more messages than workers are stuck behind a next hop whose DATA does
// not answer until the test says so, and the queue's first message for
// an idle destination is delivered meanwhile.
func TestNoHeadOfLineBlocking(t *testing.T) {
	const workers, slowN = 3, 6 // slowN >= workers: before the fix every worker held a slow message
	slow := newPeer(t, func(p *peer) { p.hold = make(chan struct{}) })
	var once sync.Once
	unblock := func() { once.Do(func() { close(slow.hold) }) }
	t.Cleanup(unblock) // runs before the world's Stop (cleanups run last first)
	fast := newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.Workers = workers
	cfg.Routes = []config.Route{
		mkRoute([]string{"slow.test"}, slow.addr, func(r *config.Route) { r.Concurrency = 2 }),
		mkRoute([]string{"*"}, fast.addr),
	}
	w := newWorld(t, cfg)
	var slowIDs []string
	for range slowN {
		slowIDs = append(slowIDs, w.enqueue("u@local.test", []string{"x@slow.test"}, localSender, plainBody))
	}
	// Last in the queue: leased after every slow message.
	fastID := w.enqueue("u@local.test", []string{"y@example.test"}, localSender, plainBody)
	w.start()
	w.waitFor("two transactions blocked in DATA at slow.test", func() bool {
		slow.mu.Lock()
		defer slow.mu.Unlock()
		return slow.inData == 2
	})
	w.waitFor("the message for the idle destination delivered", func() bool {
		return len(fast.messages()) == 1 && strings.Contains(w.logs.String(), "queue_id="+fastID+" rcpt=y@example.test")
	})
	if _, err := w.q.Get(fastID); err == nil {
		t.Errorf("%s still queued after its delivery", fastID)
	}
	slow.mu.Lock()
	stuck, done := slow.inData, len(slow.msgs)
	slow.mu.Unlock()
	if stuck != 2 || done != 0 {
		t.Fatalf("slow.test: %d in DATA, %d delivered; want 2 and 0 (route concurrency 2, DATA blocked)", stuck, done)
	}
	for _, id := range slowIDs {
		if r := w.get(id).Rcpts[0]; r.Status != queue.RcptPending || r.Attempts != 0 {
			t.Errorf("%s: %s after %d attempts while slow.test is blocked, want pending, not attempted", id, r.Status, r.Attempts)
		}
	}
	unblock()
	w.waitFor("every message delivered", w.queueEmpty)
	seen := map[string]int{}
	for _, m := range slow.messages() {
		seen[strings.Join(m.rcpts, ",")]++
	}
	if len(slow.messages()) != slowN || seen["x@slow.test"] != slowN {
		t.Errorf("slow.test got %d messages (%v), want %d", len(slow.messages()), seen, slowN)
	}
	if n := len(fast.messages()); n != 1 {
		t.Errorf("the idle destination got %d messages, want 1", n)
	}
}

// Stop while messages wait for a place at their destination: they are
// given back as they were (no attempt, no reply recorded), the one in
// its transaction is kept as interrupted, and every lease is returned.
func TestStopReleasesParkedMessages(t *testing.T) {
	slow := newPeer(t, func(p *peer) { p.hold = make(chan struct{}) })
	defer close(slow.hold)
	cfg := baseConfig(t)
	cfg.Queue.Workers = 2
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, slow.addr, func(r *config.Route) { r.Concurrency = 1 })}
	w := newWorld(t, cfg)
	var ids []string
	for range 4 {
		ids = append(ids, w.enqueue("u@local.test", []string{"x@slow.test"}, localSender, plainBody))
	}
	m := w.start()
	w.waitFor("one transaction blocked in DATA", func() bool { return dataStarted(slow) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // half of it to wait for the transaction
	defer cancel()
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	interrupted := 0
	for _, id := range ids {
		e := w.get(id)
		r := e.Rcpts[0]
		if r.Status != queue.RcptPending || e.Attempts != 0 || r.Attempts != 0 {
			t.Errorf("%s after Stop: %s, attempts %d/%d", id, r.Status, e.Attempts, r.Attempts)
		}
		if r.LastReply != "" {
			interrupted++
		}
		l, err := w.q.LeaseID(id)
		if err != nil {
			t.Errorf("%s: lease not given back: %v", id, err)
			continue
		}
		l.Release()
	}
	if interrupted != 1 {
		t.Errorf("%d messages with a reply recorded, want 1 (the one in DATA)", interrupted)
	}
}

// A reload that changes a destination's route while messages wait for a
// place there: once a place frees, they are not sent with the route they
// were leased with but leased again at once, and go by the new one,
// without an attempt counted or a reply recorded for the wait.
func TestReloadRequeuesParkedMessages(t *testing.T) {
	old := newPeer(t, func(p *peer) { p.hold = make(chan struct{}) })
	var once sync.Once
	unblock := func() { once.Do(func() { close(old.hold) }) }
	t.Cleanup(unblock)
	fresh := newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.Workers = 2
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, old.addr, func(r *config.Route) { r.Concurrency = 1 })}
	w := newWorld(t, cfg)
	for range 4 {
		w.enqueue("u@local.test", []string{"x@slow.test"}, localSender, plainBody)
	}
	m := w.start()
	w.waitFor("one transaction blocked in DATA", func() bool { return dataStarted(old) })
	cfg2 := *cfg
	cfg2.Routes = []config.Route{mkRoute([]string{"*"}, fresh.addr)}
	if err := m.Reload(&cfg2); err != nil {
		t.Fatal(err)
	}
	unblock()
	w.waitFor("every message delivered", w.queueEmpty)
	if n, m := len(old.messages()), len(fresh.messages()); n != 1 || m != 3 {
		t.Fatalf("old route got %d messages, new route %d; want 1 (the one in DATA at the reload) and 3", n, m)
	}
	if strings.Contains(w.logs.String(), "status=deferred") {
		t.Errorf("a parked message was deferred:\n%s", w.logs.String())
	}
}

// A backlog for one saturated destination larger than the lease limit
// (activeLimit: 200 here) does not fill every lease slot: the destination
// holds its share (half the slots, here) and the messages beyond are
// parked, not leased, so the one message for an idle destination, queued
// after them all, goes out while the backlog waits. Parking is not an
// attempt (nothing counted, nothing logged, nothing written), and once
// the next hop answers, places freeing at the destination bring the parked
// messages back at once, not after parkFor: the whole backlog is
// delivered within the test's deadline, far below parkFor.
func TestParkingBacklogBeyondLeaseLimit(t *testing.T) {
	const backlog = 260 // > activeLimit(3) = 200
	slow := newPeer(t, func(p *peer) { p.hold = make(chan struct{}) })
	var once sync.Once
	unblock := func() { once.Do(func() { close(slow.hold) }) }
	t.Cleanup(unblock)
	fast := newPeer(t)
	var laterTries atomic.Int32
	fast.setRcpt(func(to string) error {
		if strings.HasPrefix(to, "later@") {
			laterTries.Add(1)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy"}
		}
		return nil
	})
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)}
	cfg.Queue.Workers = 3 // one more than slow.test may take
	cfg.Routes = []config.Route{
		mkRoute([]string{"slow.test"}, slow.addr, func(r *config.Route) { r.Concurrency = 2 }),
		mkRoute([]string{"*"}, fast.addr),
	}
	w := newWorld(t, cfg)
	var slowIDs []string
	for range backlog {
		slowIDs = append(slowIDs, w.enqueue("u@local.test", []string{"x@slow.test"}, localSender, plainBody))
	}
	fastID := w.enqueue("u@local.test", []string{"y@example.test"}, localSender, plainBody)
	// Parked for one recipient, delivered to the other: recorded, due
	// again with the parked recipient untried.
	mixedID := w.enqueue("u@local.test", []string{"z@example.test", "w@slow.test"}, localSender, plainBody)
	// Parked for one recipient, deferred for the other: an attempt, due
	// again at its retry as a whole, not at once (which would try the
	// deferring hop again and again).
	deferID := w.enqueue("u@local.test", []string{"later@example.test", "d@slow.test"}, localSender, plainBody)
	m := w.start()
	w.waitFor("the messages for the idle destination delivered", func() bool {
		logs := w.logs.String()
		return len(fast.messages()) == 2 && strings.Contains(logs, "queue_id="+fastID+" rcpt=y@example.test") &&
			strings.Contains(logs, "queue_id="+mixedID+" rcpt=z@example.test") &&
			strings.Contains(logs, "queue_id="+deferID+" rcpt=later@example.test") &&
			w.get(mixedID).Rcpts[0].Status == queue.RcptDelivered && w.get(deferID).Attempts > 0 // logged before recorded
	})
	if e := w.get(deferID); e.Rcpts[0].Attempts != 1 || e.Rcpts[1].Attempts != 0 || e.Rcpts[1].LastReply != "" ||
		e.Attempts != 1 || e.NextAttempt.Before(time.Now().Add(50*time.Minute)) {
		t.Errorf("%s: attempts %d and %d (parked reply %q), message attempts %d, next %v; want 1 and 0 (\"\"), 1, in an hour",
			deferID, e.Rcpts[0].Attempts, e.Rcpts[1].Attempts, e.Rcpts[1].LastReply, e.Attempts, e.NextAttempt)
	}
	if e := w.get(mixedID); e.Rcpts[0].Status != queue.RcptDelivered || e.Rcpts[1].Status != queue.RcptPending ||
		e.Rcpts[1].Attempts != 0 || e.Rcpts[1].LastReply != "" || e.Attempts != 0 {
		t.Errorf("%s: %s then %s (attempts %d, reply %q), message attempts %d; want delivered, then pending untried, 0",
			mixedID, e.Rcpts[0].Status, e.Rcpts[1].Status, e.Rcpts[1].Attempts, e.Rcpts[1].LastReply, e.Attempts)
	}
	m.lim.mu.Lock()
	var held int
	if s := m.lim.m["r0 "+slow.addr]; s != nil {
		held = s.refs
	}
	m.lim.mu.Unlock()
	if limit := activeLimit(3) / 2; held == 0 || held > limit {
		t.Errorf("slow.test holds %d messages, want 1 to %d (half the lease slots)", held, limit)
	}
	if n := len(slow.messages()); n != 0 {
		t.Fatalf("slow.test got %d messages while blocked", n)
	}
	for _, id := range slowIDs {
		e := w.get(id)
		if r := e.Rcpts[0]; r.Status != queue.RcptPending || r.Attempts != 0 || e.Attempts != 0 || r.LastReply != "" {
			t.Fatalf("%s while slow.test is blocked: %s, attempts %d/%d, reply %q; want pending, untried", id, r.Status, e.Attempts, r.Attempts, r.LastReply)
		}
	}
	if s := w.logs.String(); strings.Contains(s, "parked") || strings.Contains(s, "@slow.test") {
		t.Errorf("parking logged as an attempt:\n%s", s)
	}
	unblock()
	w.waitFor("the whole backlog delivered", func() bool { return w.q.Len() == 1 })
	if n := len(slow.messages()); n != backlog+1 {
		t.Errorf("slow.test got %d messages, want %d", n, backlog+1)
	}
	if n := laterTries.Load(); n != 1 {
		t.Errorf("the deferring hop was asked %d times for later@, want once (retry in an hour)", n)
	}
}

// TestWaitingHoldsAtMostHalfTheLeases: however many destinations back up,
// and whatever their concurrency, the messages waiting for a place hold at
// most half the lease slots (the rest stays for messages in transaction
// and destinations with a free place), and a destination with a free place
// is never crowded. A floor of twice the concurrency let seven backlogs of
// concurrency 5 take all 500 slots of 50 workers.
func TestWaitingHoldsAtMostHalfTheLeases(t *testing.T) {
	for _, tc := range []struct{ workers, conc int }{{50, 20}, {50, 5}, {20, 2}, {3, 1}, {50, 200}} {
		l := newLimiter()
		l.active = activeLimit(tc.workers)
		first := 0
		for k := 0; k < 1000; k++ {
			key := fmt.Sprintf("r%d", k)
			s := &slot{ch: make(chan struct{}, tc.conc)}
			l.m[key] = s
			for i := 0; i < l.active && !l.crowdedLocked(s); i++ {
				l.join(s)
			}
			if k == 0 {
				first = s.refs
			}
			if s.refs < tc.conc {
				t.Fatalf("workers %d, concurrency %d: destination %d crowded with a free place (%d of %d)", tc.workers, tc.conc, k, s.refs, tc.conc)
			}
			if l.waiting > l.active/2 {
				t.Fatalf("workers %d, concurrency %d: %d destinations backed up, %d waiting of %d slots", tc.workers, tc.conc, k+1, l.waiting, l.active)
			}
		}
		if want := tc.conc + l.active/4; first != want {
			t.Errorf("workers %d, concurrency %d: one backlog alone holds %d, want its places and a quarter of the slots, %d", tc.workers, tc.conc, first, want)
		}
		for key, s := range l.m { // and all leave again
			for s.refs > 0 {
				l.leave(key, s)
			}
		}
		if l.total != 0 || l.waiting != 0 || len(l.m) != 0 {
			t.Errorf("after every message left: total %d, waiting %d, %d destinations", l.total, l.waiting, len(l.m))
		}
	}
}

// A reload brings parked messages back at once: the new routes may give
// their destination another key, and no place freeing at the old one
// would wake them (they would wait parkFor, five minutes). Here the
// backlog's route moves to another next hop; the parked messages go there
// while the old hop is still blocked.
func TestReloadUnparks(t *testing.T) {
	const backlog = 260
	slow := newPeer(t, func(p *peer) { p.hold = make(chan struct{}) })
	var once sync.Once
	unblock := func() { once.Do(func() { close(slow.hold) }) }
	t.Cleanup(unblock)
	fresh := newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.Workers = 3
	cfg.Routes = []config.Route{mkRoute([]string{"slow.test"}, slow.addr, func(r *config.Route) { r.Concurrency = 2 })}
	w := newWorld(t, cfg)
	for range backlog {
		w.enqueue("u@local.test", []string{"x@slow.test"}, localSender, plainBody)
	}
	m := w.start()
	parked := func() int {
		m.park.mu.Lock()
		defer m.park.mu.Unlock()
		n := 0
		for _, l := range m.park.m {
			n += len(l.ids)
		}
		return n
	}
	w.waitFor("messages parked", func() bool { return parked() > 100 })
	n := parked()
	cfg2 := *cfg
	cfg2.Routes = []config.Route{mkRoute([]string{"slow.test"}, fresh.addr)}
	if err := m.Reload(&cfg2); err != nil {
		t.Fatal(err)
	}
	w.waitFor("the parked messages at the new next hop", func() bool { return len(fresh.messages()) >= n })
	unblock()
	w.waitFor("every message delivered", w.queueEmpty)
	if got := len(slow.messages()) + len(fresh.messages()); got != backlog {
		t.Errorf("%d delivered, want %d", got, backlog)
	}
}

// A message leased before a reload and parked after the reload drained
// the parking lists (under a key its new routes may never free) is made
// due at once, not left for parkFor. The race is set up by hand: the
// settings change between the lease and the parking.
func TestParkedAfterReloadDueAtOnce(t *testing.T) {
	cfg := baseConfig(t)
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"x@slow.test"}, localSender, plainBody)
	m, err := New(Deps{Config: cfg, Queue: w.q, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	old := m.set.Load()
	l, err := w.q.LeaseID(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.(postponer).Postpone(time.Now().Add(parkFor)); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(cfg); err != nil { // its unparkAll finds nothing yet
		t.Fatal(err)
	}
	groups := m.groups(old, w.get(id))
	results := [][]outcome{fill(len(groups[0].rcpts), outcome{reply: errParked})}
	m.parkGroups(old, w.get(id), groups, results)
	if ids := m.park.drain(); len(ids) != 0 {
		t.Errorf("still parked: %v", ids)
	}
	if l, err := w.q.Lease(time.Now()); err != nil || l.Envelope().ID != id {
		t.Errorf("not due at once: %v", err)
	}
}
