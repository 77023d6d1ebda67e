package queue

import (
	"errors"
	"github.com/portcullis-mta/portcullis/core/internal/logbuf"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestRecoveryFromLeftovers(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	d := openDir(t, dir, c)
	good := commit(t, d, testEnv("a@x.test"), "H: 1\r\n", "good body\r\n")
	full := commit(t, d, testEnv("a@x.test"), "", "a message that will be cut short\r\n")
	// A draft abandoned by a crash, and an envelope update cut off before its rename.
	dr, _ := d.NewDraft()
	dr.Write([]byte("half a message"))
	dr.Path()
	os.WriteFile(filepath.Join(dir, good+envExt+tmpExt), []byte(`{"id":`), 0o600)
	d.Close()

	truncated := ids.next(c.Now())
	raw, _ := os.ReadFile(filepath.Join(dir, full+msgExt))
	os.WriteFile(filepath.Join(dir, truncated+msgExt), raw[:len(raw)-7], 0o600)
	os.Remove(filepath.Join(dir, full+msgExt))
	garbage := ids.next(c.Now())
	os.WriteFile(filepath.Join(dir, garbage+msgExt), []byte("From: not a spool file\r\n\r\nhello\r\n"), 0o600)
	empty := ids.next(c.Now())
	os.WriteFile(filepath.Join(dir, empty+msgExt), nil, 0o600)
	orphan := ids.next(c.Now())
	os.WriteFile(filepath.Join(dir, orphan+envExt), []byte(`{"id":"`+orphan+`"}`), 0o600)
	os.WriteFile(filepath.Join(dir, "README"), []byte("an admin's note stays"), 0o600)

	d2 := openDir(t, dir, c)
	l, err := d2.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 1 || l[0].ID != good {
		t.Fatalf("after recovery List = %v, want only %s", l, good)
	}
	if b := readAll(t, d2, good); b != "H: 1\r\ngood body\r\n" {
		t.Fatalf("good message bytes %q", b)
	}
	want := []string{".changed", ".lock", "README", corruptDir, good + msgExt}
	sort.Strings(want)
	if got := dirNames(t, dir); !equal(got, want) {
		t.Fatalf("directory after recovery %v, want %v", got, want)
	}
	wantCorrupt := []string{empty + msgExt, garbage + msgExt, truncated + msgExt}
	sort.Strings(wantCorrupt)
	if got := dirNames(t, filepath.Join(dir, corruptDir)); !equal(got, wantCorrupt) {
		t.Fatalf("corrupt/ holds %v, want %v", got, wantCorrupt)
	}
	if l, err := d2.Lease(c.Now()); err != nil || l.Envelope().ID != good {
		t.Fatalf("lease after recovery: %v", err)
	}
}

// A CLI opening the spool while the daemon writes must not take the
// daemon's drafts for crash leftovers.
func TestNoRecoveryWhileShared(t *testing.T) {
	dir := t.TempDir()
	daemon := openDir(t, dir, nil)
	dr, _ := daemon.NewDraft()
	dr.Write([]byte("arriving"))
	cli := openDir(t, dir, nil)
	if _, err := os.Stat(dr.Path()); err != nil {
		t.Fatalf("second Open removed a live draft: %v", err)
	}
	if err := dr.Commit(testEnv("a@x.test"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Get(dr.ID()); err != nil {
		t.Fatal(err)
	}
	// A leftover older than any draft can be goes even then.
	old := filepath.Join(dir, ids.next(time.Now())+tmpExt)
	os.WriteFile(old, []byte("cut off"), 0o600)
	os.Chtimes(old, time.Now().Add(-25*time.Hour), time.Now().Add(-25*time.Hour))
	openDir(t, dir, nil)
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("day-old temporary file kept: %v", err)
	}
}

func TestCorruptFoundAtLease(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	d := openDir(t, dir, c)
	id := commit(t, d, testEnv("a@x.test"), "", "m")
	os.WriteFile(filepath.Join(dir, id+envExt), []byte("{not json"), 0o600)
	if _, err := d.Lease(c.Now()); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Lease = %v, want ErrEmpty", err)
	}
	if _, err := os.Stat(filepath.Join(dir, corruptDir, id+envExt)); err != nil {
		t.Fatalf("bad side file not moved aside: %v", err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The daemon's Dir sees what a CLI process does, through the control file.
func TestOtherProcessChangesSeen(t *testing.T) {
	qdir, hdir := t.TempDir(), t.TempDir()
	c := newClock()
	daemon := openDir(t, qdir, c)
	later := c.Now().Add(time.Hour)
	env := testEnv("a@x.test")
	env.NextAttempt = later
	id := commit(t, daemon, env, "", "m")
	drain(daemon.Wake())

	cli := openDir(t, qdir, c)
	if err := cli.Flush(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "daemon to see the flush", func() bool { return daemon.NextDue().Equal(c.Now()) })
	<-daemon.Wake()
	// ... and counts it as a flush (delivery then retries dead destinations).
	waitFor(t, "daemon to count the flush", func() bool { return daemon.Flushes() == 1 })

	if err := cli.Delete(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "daemon to see the delete", func() bool { return daemon.NextDue().IsZero() })
	if n := daemon.Flushes(); n != 1 {
		t.Errorf("a delete counted as a flush: Flushes %d, want 1", n)
	}

	// Quarantine release: another process moves a message into the queue.
	hold := openDir(t, hdir, c)
	henv := testEnv("b@x.test")
	henv.Reason, henv.Tags = "spam score 12.5", []string{"spam"}
	henv.NextAttempt = later
	hid := commit(t, hold, henv, "X-Spam: yes\r\n", "body")
	cliQ := openDir(t, qdir, c)
	if err := hold.Move(hid, cliQ, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "daemon to see the released message", func() bool { return daemon.NextDue().Equal(c.Now()) })
	l, err := daemon.Lease(c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Envelope(); got.ID != hid || got.Reason != henv.Reason {
		t.Fatalf("released envelope %+v", got)
	}
	if b := readLease(t, l); b != "X-Spam: yes\r\nbody" {
		t.Fatalf("released bytes %q", b)
	}
	if _, err := hold.Get(hid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("still in quarantine after Move: %v", err)
	}
}

func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

// A Move cut short after the copy was committed (crash before the original
// was removed) leaves the message in both stores; moving it again finishes
// the job instead of failing on the existing ID.
func TestMoveFinishesInterruptedMove(t *testing.T) {
	c := newClock()
	hold, q := openDir(t, t.TempDir(), c), openDir(t, t.TempDir(), c)
	id := commit(t, hold, testEnv("a@x.test"), "", "body")
	dr, err := q.newDraft(id)
	if err != nil {
		t.Fatal(err)
	}
	dr.Write([]byte("body"))
	if err := dr.Commit(testEnv("a@x.test"), nil); err != nil {
		t.Fatal(err)
	}
	if err := hold.Move(id, q, nil); err != nil {
		t.Fatalf("Move over an existing copy: %v", err)
	}
	if _, err := hold.Get(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("original not removed: %v", err)
	}
	if l, _ := q.List(); len(l) != 1 || readAll(t, q, id) != "body" {
		t.Fatalf("destination holds %d messages", len(l))
	}
}

// A message that cannot be read for a reason other than corruption (here
// its side file is a directory: EISDIR, standing for EIO or EMFILE) stays
// queued and is retried later; it is neither dropped nor moved aside.
func TestUnreadableMessageRetried(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	d := openDir(t, dir, c)
	id := commit(t, d, testEnv("a@x.test"), "", "m")
	envDir := filepath.Join(dir, id+envExt)
	if err := os.Mkdir(envDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Lease(c.Now()); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Lease = %v, want ErrEmpty", err)
	}
	if want := c.Now().Add(errBackoff); !d.NextDue().Equal(want) {
		t.Fatalf("NextDue = %v, want %v", d.NextDue(), want)
	}
	d2 := openDir(t, dir, c) // and a fresh index keeps it too
	if d2.NextDue().IsZero() {
		t.Fatal("reopened index forgot the unreadable message")
	}
	os.Remove(envDir)
	l, err := d.Lease(c.Now().Add(errBackoff))
	if err != nil || l.Envelope().ID != id {
		t.Fatalf("Lease after the fault cleared: %v", err)
	}
}

// Watching costs a stat per poll: an idle queue, a CLI that only opens and
// lists, and the daemon's own commits and leases never make it rescan; a
// CLI flush does, once.
func TestWatchRescansOnlyOnChange(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	daemon := openDir(t, dir, c)
	id := commit(t, daemon, testEnv("a@x.test"), "", "m")
	l, _ := daemon.Lease(c.Now())
	l.Release()
	cli := openDir(t, dir, c)
	if _, err := cli.Entries(); err != nil {
		t.Fatal(err)
	}
	start := daemon.polls.Load()
	waitFor(t, "ten polls", func() bool { return daemon.polls.Load() >= start+10 })
	if n := daemon.rescans.Load(); n != 0 {
		t.Fatalf("%d rescans without any change by another process", n)
	}
	if err := cli.Flush(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rescan", func() bool { return daemon.rescans.Load() == 1 })
	start = daemon.polls.Load()
	waitFor(t, "ten more polls", func() bool { return daemon.polls.Load() >= start+10 })
	if n := daemon.rescans.Load(); n != 1 {
		t.Fatalf("%d rescans after one flush", n)
	}
}

// With Options.Notify, a commit and a lease update by another process (the
// queue commands: `queue bounce` queues a DSN and rewrites the envelope)
// reach the daemon's Dir; without it they waited for the next restart.
func TestNotifyCommitsSeen(t *testing.T) {
	qdir := t.TempDir()
	c := newClock()
	daemon := openDir(t, qdir, c)
	cli := openDirOpts(t, qdir, c, Options{Poll: -1, Notify: true})
	id := commit(t, cli, testEnv("a@x.test"), "", "dsn")
	waitFor(t, "daemon to see the CLI's commit", func() bool { return daemon.NextDue().Equal(c.Now()) })
	drain(daemon.Wake())

	later := c.Now().Add(time.Hour)
	l, err := cli.LeaseID(id)
	if err != nil {
		t.Fatal(err)
	}
	env := l.Envelope()
	env.NextAttempt = later
	if err := l.Update(env); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "daemon to see the CLI's update", func() bool { return daemon.NextDue().Equal(later) })
}

// The daemon's log traces what other processes did to its queue (a
// `queue delete`, the DSN of a `queue bounce`), by queue_id, and never
// takes one of its own commits for another process's, even when a rescan
// falls between a commit's rename and its indexing.
func TestOtherProcessChangesLogged(t *testing.T) {
	qdir := t.TempDir()
	var logs logbuf.Buffer
	daemon, err := Open(qdir, Options{Poll: time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { daemon.Close() })
	gone := commit(t, daemon, testEnv("a@x.test"), "", "m")

	cli := openDirOpts(t, qdir, nil, Options{Poll: -1, Notify: true})
	// The daemon commits while the CLI keeps the watcher rescanning.
	stop := make(chan struct{})
	churned := make(chan struct{})
	go func() {
		defer close(churned)
		for {
			select {
			case <-stop:
				return
			default:
			}
			cli.Flush("")
		}
	}()
	var own []string
	for range 50 {
		own = append(own, commit(t, daemon, testEnv("b@x.test"), "", "m"))
	}
	close(stop)
	<-churned

	if err := cli.Delete(gone); err != nil {
		t.Fatal(err)
	}
	added := commit(t, cli, testEnv("c@x.test"), "", "dsn")
	defer func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	}()
	waitFor(t, "the daemon to log both", func() bool {
		s := logs.String()
		return strings.Contains(s, `removed by another process" queue_id=`+gone) &&
			strings.Contains(s, `added by another process" queue_id=`+added)
	})
	for _, id := range own {
		if strings.Contains(logs.String(), "queue_id="+id) {
			t.Fatalf("the daemon's own commit %s logged as another process's:\n%s", id, logs.String())
		}
	}
}

// Removing a delivered message is two unlinks, the .msg and its side file
// (the envelope as updated by earlier attempts). A crash between them must
// leave nothing to deliver: were the side file first to go, the .msg would
// be left with the envelope it was committed with, every recipient pending,
// and the next start would deliver it again to those who already have it.
// The crash is simulated in process: the second unlink is not made, and
// what follows it (Release, Close) writes nothing to the directory.
func TestRemoveCutShortRedeliversNothing(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	d := openDir(t, dir, c)
	id := commit(t, d, testEnv("a@x.test", "b@x.test"), "", "body\r\n")

	// First attempt: a delivered, b deferred; the side file records it.
	l, err := d.Lease(c.Now())
	if err != nil {
		t.Fatal(err)
	}
	env := l.Envelope()
	env.Rcpts[0].Status = RcptDelivered
	env.NextAttempt = c.Now()
	if err := l.Update(env); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, id+envExt)); err != nil {
		t.Fatalf("no side file after a partial delivery: %v", err)
	}

	// Second attempt delivers b, and the process dies after one unlink.
	errCrash := errors.New("crashed here")
	var unlinked []string
	removeFile = func(p string) error {
		if len(unlinked) > 0 {
			return errCrash
		}
		unlinked = append(unlinked, filepath.Base(p))
		return os.Remove(p)
	}
	t.Cleanup(func() { removeFile = os.Remove })
	l, err = d.Lease(c.Now())
	if err != nil {
		t.Fatal(err)
	}
	env = l.Envelope()
	env.Rcpts[1].Status = RcptDelivered
	if err := l.Update(env); !errors.Is(err, errCrash) {
		t.Fatalf("Update = %v, want the simulated crash between the unlinks", err)
	}
	l.Release()
	d.Close()
	removeFile = os.Remove

	r := openDir(t, dir, c) // alone: recovers
	if envs, err := r.List(); err != nil || len(envs) != 0 {
		for _, e := range envs {
			for _, rc := range e.Rcpts {
				t.Logf("left: %s rcpt %s %s", e.ID, rc.Addr, rc.Status)
			}
		}
		t.Fatalf("after a crash between the unlinks (first %v) the queue holds %d messages (%v), want none", unlinked, len(envs), err)
	}
	if _, err := r.Lease(c.Now().Add(time.Hour)); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Lease after recovery = %v, want ErrEmpty (nothing to deliver again)", err)
	}
	for _, n := range dirNames(t, dir) {
		if strings.HasPrefix(n, id) {
			t.Errorf("%s left after recovery", n)
		}
	}
}

// TestCommitWhileWatcherStarts: a message another process commits after
// the daemon's Open scanned the directory, but before its watcher has
// started, is seen. The watcher read its starting point only when it ran,
// so it took that commit's notification as the state it started from and
// never rescanned: a `queue bounce` DSN written as the daemon started sat
// undelivered until some later change (TestNotifyCommitsSeen failed so,
// once, on a loaded machine).
func TestCommitWhileWatcherStarts(t *testing.T) {
	qdir := t.TempDir()
	c := newClock()
	cli := openDirOpts(t, qdir, c, Options{Poll: -1, Notify: true})
	var id string
	started := make(chan struct{})
	hook := func(d *Dir) {
		if d == cli { // its own watcher, started late
			return
		}
		defer close(started)
		id = commit(t, cli, testEnv("a@x.test"), "", "dsn")
	}
	watchStarting.Store(&hook)
	daemon := openDir(t, qdir, c)
	<-started
	watchStarting.Store(nil)
	// Ten polls are ample for a watcher that noticed the change.
	waitFor(t, "ten polls", func() bool { return daemon.polls.Load() >= 10 })
	if !daemon.NextDue().Equal(c.Now()) {
		t.Fatalf("the daemon's index lacks %s, committed while its watcher started (next due %v)", id, daemon.NextDue())
	}
}
