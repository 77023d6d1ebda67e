package queue

import (
	"errors"
	"sort"
	"sync"
	"testing"
	"time"
)

// Two Dirs on one directory stand for two processes: flock locks belong to
// open file descriptions, so they conflict exactly as across processes.
func TestLeaseExclusiveAcrossDirs(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	a, b := openDir(t, dir, c), openDir(t, dir, c)
	id := commit(t, a, testEnv("r@x.test"), "", "m")
	if err := b.Rescan(); err != nil {
		t.Fatal(err)
	}
	la, err := a.Lease(c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lease(c.Now()); !errors.Is(err, ErrEmpty) {
		t.Fatalf("second lease in the same Dir = %v, want ErrEmpty", err)
	}
	if _, err := b.Lease(c.Now()); !errors.Is(err, ErrEmpty) {
		t.Fatalf("lease from the other Dir = %v, want ErrEmpty", err)
	}
	// The other Dir backs off from a message locked elsewhere instead of spinning.
	if nd := b.NextDue(); !nd.After(c.Now()) {
		t.Fatalf("NextDue in the other Dir = %v, want after %v", nd, c.Now())
	}
	for name, op := range map[string]func() error{
		"delete":          func() error { return b.Delete(id) },
		"flush":           func() error { return b.Flush(id) },
		"move":            func() error { return b.Move(id, openDir(t, t.TempDir(), c), nil) },
		"delete same Dir": func() error { return a.Delete(id) },
	} {
		if err := op(); !errors.Is(err, ErrLeased) {
			t.Errorf("%s of a leased message = %v, want ErrLeased", name, err)
		}
	}
	if err := la.Release(); err != nil {
		t.Fatal(err)
	}
	lb, err := b.Lease(c.Now().Add(busyBackoff))
	if err != nil {
		t.Fatalf("lease after release: %v", err)
	}
	if lb.Envelope().ID != id {
		t.Fatalf("leased %s, want %s", lb.Envelope().ID, id)
	}
	lb.Release()
	if err := a.Delete(id); err != nil {
		t.Fatal(err)
	}
}

func TestLeaseOrder(t *testing.T) {
	c := newClock()
	d := openDir(t, t.TempDir(), c)
	now := c.Now()
	mk := func(due time.Duration) string {
		env := testEnv("r@x.test")
		env.NextAttempt = now.Add(due)
		return commit(t, d, env, "", "m")
	}
	late, early, mid, future := mk(-1*time.Minute), mk(-10*time.Minute), mk(-5*time.Minute), mk(time.Hour)
	var got []string
	for {
		l, err := d.Lease(now)
		if errors.Is(err, ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, l.Envelope().ID)
	}
	want := []string{early, mid, late}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("lease order %v, want %v", got, want)
	}
	if !d.NextDue().Equal(now.Add(time.Hour)) {
		t.Fatalf("NextDue = %v, want %s's", d.NextDue(), future)
	}
}

// Committers and delivery workers at once, as in the daemon (run with -race).
func TestConcurrentCommitAndLease(t *testing.T) {
	const writers, perWriter, workers = 6, 40, 4
	d := openDir(t, t.TempDir(), nil)
	var wg sync.WaitGroup
	committed := make(chan string, writers*perWriter)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				committed <- commit(t, d, testEnv("a@x.test", "b@x.test"), "H: v\r\n", "body")
			}
		}()
	}
	var mu sync.Mutex
	delivered := map[string]int{}
	stop := make(chan struct{})
	var ww sync.WaitGroup
	for w := 0; w < workers; w++ {
		ww.Add(1)
		go func() {
			defer ww.Done()
			for {
				l, err := d.Lease(time.Now())
				if errors.Is(err, ErrEmpty) {
					select {
					case <-stop:
						return
					case <-d.Wake():
					case <-time.After(5 * time.Millisecond):
					}
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				env := l.Envelope()
				for _, r := range env.Rcpts {
					r.Status = RcptDelivered
				}
				mu.Lock()
				delivered[env.ID]++
				mu.Unlock()
				if err := l.Update(env); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	close(committed)
	waitFor(t, "every message delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) == writers*perWriter
	})
	close(stop)
	ww.Wait()
	for id := range committed {
		if delivered[id] != 1 {
			t.Errorf("%s delivered %d times", id, delivered[id])
		}
	}
	if l, _ := d.List(); len(l) != 0 {
		t.Fatalf("%d messages left", len(l))
	}
}

func TestIDsUniqueAndSorted(t *testing.T) {
	const goroutines, each = 8, 5000
	all := make([][]string, goroutines)
	var wg sync.WaitGroup
	for g := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				all[g] = append(all[g], ids.next(time.Now()))
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, list := range all {
		if !sort.StringsAreSorted(list) {
			t.Fatal("IDs from one goroutine are not increasing")
		}
		for _, id := range list {
			if seen[id] || !ValidID(id) {
				t.Fatalf("duplicate or malformed ID %q", id)
			}
			seen[id] = true
		}
	}
	// A stalled or stepped-back clock still gives increasing IDs.
	fixed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := ids.next(fixed), ids.next(fixed.Add(-time.Hour))
	if !(a < b) {
		t.Fatalf("IDs not increasing on a stuck clock: %s then %s", a, b)
	}
	id := ids.next(time.Now().Add(time.Hour))
	if got := IDTime(id); got.Before(time.Now().Add(59 * time.Minute)) {
		t.Fatalf("IDTime(%s) = %v", id, got)
	}
}

func TestLeaseID(t *testing.T) {
	c := newClock()
	d := openDir(t, t.TempDir(), c)
	env := testEnv("a@x.test")
	env.NextAttempt = c.Now().Add(time.Hour)
	id := commit(t, d, env, "", "m")
	other := commit(t, d, testEnv("b@x.test"), "", "m")
	l, err := d.LeaseID(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.LeaseID(id); !errors.Is(err, ErrLeased) {
		t.Fatalf("second LeaseID = %v, want ErrLeased", err)
	}
	if _, err := d.LeaseID("ZZZZZZZZZZZZZZZZ"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LeaseID of nothing = %v, want ErrNotFound", err)
	}
	if l2, err := d.Lease(c.Now().Add(2 * time.Hour)); err != nil || l2.Envelope().ID != other {
		t.Fatalf("Lease while %s is held by LeaseID: %v", id, err)
	}
	l.Release()
	if !d.NextDue().Equal(env.NextAttempt) {
		t.Fatalf("NextDue after release = %v", d.NextDue())
	}
}

func TestEntriesShowLeasesAndLen(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	daemon, cli := openDir(t, dir, c), openDir(t, dir, c)
	a := commit(t, daemon, testEnv("a@x.test"), "", "m")
	b := commit(t, daemon, testEnv("b@x.test"), "", "m")
	l, err := daemon.LeaseID(a)
	if err != nil {
		t.Fatal(err)
	}
	es, err := cli.Entries()
	if err != nil || len(es) != 2 {
		t.Fatalf("Entries: %d, %v", len(es), err)
	}
	if es[0].ID != a || !es[0].Leased || es[1].ID != b || es[1].Leased {
		t.Fatalf("leased flags: %s %v, %s %v", es[0].ID, es[0].Leased, es[1].ID, es[1].Leased)
	}
	if daemon.Len() != 2 {
		t.Fatalf("Len = %d with one leased and one waiting", daemon.Len())
	}
	l.Release()
	if l2, err := daemon.Lease(c.Now()); err != nil || l2.Envelope().ID != a {
		t.Fatalf("listing disturbed leasing: %v", err)
	}
}

// Release after a failed or skipped Update keeps the schedule on disk, not
// whatever the caller wrote into the envelope meanwhile.
func TestReleaseIgnoresEnvelopeChanges(t *testing.T) {
	c := newClock()
	d := openDir(t, t.TempDir(), c)
	commit(t, d, testEnv("a@x.test"), "", "m")
	l, err := d.Lease(c.Now())
	if err != nil {
		t.Fatal(err)
	}
	l.Envelope().NextAttempt = c.Now().Add(time.Hour)
	l.Release()
	if !d.NextDue().Equal(c.Now()) {
		t.Fatalf("NextDue = %v after Release, want %v", d.NextDue(), c.Now())
	}
}

func TestUpdateWithoutNextAttemptIsDueNow(t *testing.T) {
	c := newClock()
	d := openDir(t, t.TempDir(), c)
	commit(t, d, testEnv("a@x.test"), "", "m")
	l, _ := d.Lease(c.Now())
	env := l.Envelope()
	env.NextAttempt = time.Time{}
	if err := l.Update(env); err != nil {
		t.Fatal(err)
	}
	if !d.NextDue().Equal(c.Now()) {
		t.Fatalf("NextDue = %v, want now (%v)", d.NextDue(), c.Now())
	}
}

// Postpone passes a message over in this Dir's schedule only: nothing is
// written (its envelope on disk is unchanged, and another Dir or a
// restart sees it due as before), and Hasten brings it back at once. For
// a message in the intake log and one in a file of its own alike.
func TestPostponeAndHasten(t *testing.T) {
	for _, intake := range []bool{false, true} {
		dir := t.TempDir()
		c := newClock()
		d := openDirOpts(t, dir, c, Options{Intake: intake})
		id := commit(t, d, testEnv("r@x.test"), "", "m")
		onDisk := func() time.Time {
			env, err := d.Get(id)
			if err != nil {
				t.Fatal(err)
			}
			return env.NextAttempt
		}
		due := onDisk()
		l, err := d.Lease(c.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := l.(*lease).Postpone(c.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Lease(c.Now().Add(time.Minute)); !errors.Is(err, ErrEmpty) {
			t.Fatalf("intake %v: lease of a postponed message = %v, want ErrEmpty", intake, err)
		}
		if got := d.NextDue(); !got.Equal(c.Now().Add(time.Hour)) {
			t.Errorf("intake %v: NextDue %v, want an hour on", intake, got)
		}
		if got := onDisk(); !intake && !got.Equal(due) { // the intake log's Get reports the schedule
			t.Errorf("intake %v: NextAttempt %v after Postpone, want %v as before", intake, got, due)
		}
		if d.Hasten("NOSUCHID00000000", c.Now()) {
			t.Errorf("intake %v: Hasten of an unknown ID reported true", intake)
		}
		select { // drain a wake-up from the commit
		case <-d.Wake():
		default:
		}
		if !d.Hasten(id, c.Now()) {
			t.Fatalf("intake %v: Hasten of the postponed message reported false", intake)
		}
		select {
		case <-d.Wake():
		default:
			t.Errorf("intake %v: Hasten woke no one", intake)
		}
		l, err = d.Lease(c.Now())
		if err != nil {
			t.Fatalf("intake %v: lease after Hasten: %v", intake, err)
		}
		if d.Hasten(id, c.Now()) {
			t.Errorf("intake %v: Hasten of a leased message reported true", intake)
		}
		l.(*lease).Postpone(c.Now().Add(time.Hour))
		if !intake { // a file: a restart schedules it as its envelope says
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			d2 := openDir(t, dir, c)
			l2, err := d2.Lease(c.Now())
			if err != nil {
				t.Fatalf("lease after a restart: %v", err)
			}
			l2.Release()
		}
	}
}
