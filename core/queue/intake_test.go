package queue

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/internal/logbuf"
)

func openIntake(t testing.TB, dir string, c *clock) *Dir {
	t.Helper()
	return openDirOpts(t, dir, c, Options{Poll: -1, Intake: true})
}

func files(t testing.TB, dir, ext string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+ext))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// deliver leases the next due message and marks every recipient delivered.
func deliver(t testing.TB, d *Dir) (id, data string) {
	t.Helper()
	l, err := d.Lease(d.now())
	if err != nil {
		t.Fatalf("Lease: %v", err)
	}
	rc, err := l.Open()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(rc)
	rc.Close()
	env := l.Envelope()
	for _, r := range env.Rcpts {
		r.Status = RcptDelivered
	}
	if err := l.Update(env); err != nil {
		t.Fatal(err)
	}
	return env.ID, buf.String()
}

// A delivered message never becomes a file, and the log's segments are
// reused rather than piling up.
func TestIntakeDeliveredLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	d := openIntake(t, dir, nil)
	body := "Subject: t\r\n\r\n" + strings.Repeat("0123456789", 20<<10) // 200 KB: 20 fill a segment
	for i := 0; i < 100; i++ {
		id := commit(t, d, testEnv("a@x.test"), "Received: x\r\n", body)
		got, data := deliver(t, d)
		if got != id || data != "Received: x\r\n"+body {
			t.Fatalf("message %d: leased %s (%d bytes), want %s whole", i, got, len(data), id)
		}
	}
	if m := files(t, dir, msgExt); len(m) != 0 {
		t.Fatalf("delivered messages left files: %v", m)
	}
	if n := len(files(t, dir, intakeExt)); n == 0 || n > maxFreeSegs+1 {
		t.Fatalf("%d segments for 100 messages of 200 KB, want 1..%d", n, maxFreeSegs+1)
	}
	if d.Len() != 0 {
		t.Fatalf("index holds %d", d.Len())
	}
}

// A segment is reused only once no message lives in it. A message that
// waits (here due in an hour) keeps its segment while the messages around
// it are delivered and the log seals and recycles segments past it; reusing
// the segment early would have delivery read another message's bytes for
// it and, after a restart, lose it. Two ways to get there: the segment
// seals with only the waiting message live (writable), or with one more
// that is delivered afterwards (done).
func TestIntakeSegmentKeptWhileMessageLives(t *testing.T) {
	for _, tc := range []struct {
		name string
		lag  int // messages left undelivered behind the newest
	}{
		{"live only at seal", 0},
		{"two live at seal", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := newClock()
			d := openIntake(t, dir, c)
			env := testEnv("a@x.test")
			env.NextAttempt = c.Now().Add(time.Hour)
			want := "Received: w\r\nSubject: waits\r\n\r\n" + strings.Repeat("W", 1000)
			waits := commit(t, d, env, "Received: w\r\n", want[len("Received: w\r\n"):])
			body := "Subject: t\r\n\r\n" + strings.Repeat("0123456789", 20<<10) // 200 KB: 20 fill a segment
			for i := 0; i < tc.lag; i++ {
				commit(t, d, testEnv("b@x.test"), "Received: x\r\n", body)
			}
			for i := 0; i < 100; i++ { // seals and reuses segments several times over
				commit(t, d, testEnv("b@x.test"), "Received: x\r\n", body)
				if got, _ := deliver(t, d); got == waits {
					t.Fatalf("message due in an hour was leased now")
				}
			}
			if got := readAll(t, d, waits); got != want {
				t.Fatalf("waiting message reads %d bytes starting %q, want its own %d", len(got), got[:min(40, len(got))], len(want))
			}
			d.Close()
			r := openDir(t, dir, c)
			env2, err := r.Get(waits)
			if err != nil {
				t.Fatalf("after reopen the waiting message is gone: %v", err)
			}
			if !env2.NextAttempt.Equal(env.NextAttempt) {
				t.Errorf("after reopen next attempt %v, want %v", env2.NextAttempt, env.NextAttempt)
			}
			if got := readAll(t, r, waits); got != want {
				t.Fatalf("after reopen the waiting message reads %d bytes starting %q", len(got), got[:min(40, len(got))])
			}
		})
	}
}

// A deferred message is written to a file of its own with the new
// envelope: another process sees it and its state.
func TestIntakeDeferWritesFile(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	d := openIntake(t, dir, c)
	id := commit(t, d, testEnv("a@x.test", "b@x.test"), "Received: x\r\n", "Subject: t\r\n\r\nhello\r\n")
	if m := files(t, dir, msgExt); len(m) != 0 {
		t.Fatalf("committed to the log, yet files %v", m)
	}
	l, err := d.Lease(c.Now())
	if err != nil {
		t.Fatal(err)
	}
	env := l.Envelope()
	env.Rcpts[0].Status = RcptDelivered
	env.Rcpts[1].LastReply = "451 4.3.0 later"
	env.Attempts = 1
	env.NextAttempt = c.Now().Add(time.Minute)
	if err := l.Update(env); err != nil {
		t.Fatal(err)
	}
	other := openDir(t, dir, c) // the CLI's view
	got, err := other.Get(id)
	if err != nil {
		t.Fatalf("deferred message not visible to another Dir: %v", err)
	}
	if got.Attempts != 1 || got.Rcpts[0].Status != RcptDelivered || got.Rcpts[1].LastReply != "451 4.3.0 later" {
		t.Fatalf("other Dir sees %+v", got)
	}
	if s := readAll(t, other, id); s != "Received: x\r\nSubject: t\r\n\r\nhello\r\n" {
		t.Fatalf("bytes %q", s)
	}
	if _, err := d.Lease(c.Now()); err != ErrEmpty {
		t.Fatalf("Lease before due: %v", err)
	}
	c.Add(time.Minute)
	if got, _ := deliver(t, d); got != id {
		t.Fatalf("leased %s, want %s", got, id)
	}
	if len(files(t, dir, msgExt)) != 0 {
		t.Fatal("delivered message left its file")
	}
}

// Close leaves the log's live messages for the next Open, which writes
// them out as files (SIGKILL is TestCrashNeverLosesCommitted/intake).
func TestIntakeRecoveredOnOpen(t *testing.T) {
	dir := t.TempDir()
	d := openIntake(t, dir, nil)
	keep := commit(t, d, testEnv("a@x.test"), "Received: 1\r\n", "Subject: 1\r\n\r\none\r\n")
	gone := commit(t, d, testEnv("a@x.test"), "Received: 2\r\n", "Subject: 2\r\n\r\ntwo\r\n")
	if got, _ := deliver(t, d); got != keep {
		t.Fatalf("delivered %s first, want %s", got, keep)
	}
	keep, gone = gone, keep
	d.Close()
	if n := len(files(t, dir, intakeExt)); n != 1 {
		t.Fatalf("%d segments left after Close, want the one holding a message", n)
	}
	var logs logbuf.Buffer
	r, err := Open(dir, Options{Poll: -1, Events: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(files(t, dir, intakeExt)) != 0 {
		t.Fatal("segment not removed after recovery")
	}
	envs, err := r.List()
	if err != nil || len(envs) != 1 || envs[0].ID != keep {
		t.Fatalf("after recovery: %v %v, want only %s (not the delivered %s)", envs, err, keep, gone)
	}
	// A grep for the queue ID finds its recovery after a crash.
	if !strings.Contains(logs.String(), `msg="queue: recovered from the intake log" queue_id=`+keep) ||
		strings.Contains(logs.String(), gone) {
		t.Errorf("log of the recovery:\n%s", logs.String())
	}
	if s := readAll(t, r, keep); s != "Received: 2\r\nSubject: 2\r\n\r\ntwo\r\n" {
		t.Fatalf("recovered bytes %q", s)
	}
}

// A queue command that opens the spool (queue list) writes out what a
// stopped daemon left in its intake log; its log is its terminal, so it
// leaves a note, and the daemon's log names each message it recovered.
func TestIntakeRecoveredByCommandNoted(t *testing.T) {
	dir := t.TempDir()
	d := openIntake(t, dir, nil)
	id := commit(t, d, testEnv("a@x.test"), "Received: 1\r\n", "Subject: 1\r\n\r\none\r\n")
	d.Close()
	cli, err := Open(dir, Options{Poll: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cli.Close()
	if len(files(t, dir, intakeExt)) != 0 {
		t.Fatal("the command did not write the message out")
	}
	var logs logbuf.Buffer
	daemon, err := Open(dir, Options{Poll: 5 * time.Millisecond, Events: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer daemon.Close()
	waitFor(t, "the note in the daemon's log", func() bool {
		return strings.Contains(logs.String(), `msg="queue: recovered from the intake log" queue_id=`+id+` by="another process" at=`)
	})
}

// A reused segment's earlier records (delivered messages of an older
// generation) never come back, and a torn or damaged record ends what is
// read.
func TestIntakeGenerationsAndTornTail(t *testing.T) {
	dir := t.TempDir()
	d := openIntake(t, dir, nil)
	big := "Subject: big\r\n\r\n" + strings.Repeat("x", 200<<10)
	for i := 0; i < 3*segCap/(200<<10); i++ { // fills and reuses segments
		commit(t, d, testEnv("a@x.test"), "", big)
		deliver(t, d)
	}
	var live []string
	for i := 0; i < 3; i++ {
		live = append(live, commit(t, d, testEnv("a@x.test"), "", "Subject: live\r\n\r\n"+strings.Repeat("y", i+1)))
	}
	d.Close()
	segs := files(t, dir, intakeExt)
	if len(segs) != 1 {
		t.Fatalf("segments left: %v", segs)
	}
	// Damage the last record: one byte of its payload.
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := parseSegment(b)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("parse: %d messages, %v; want 3", len(msgs), err)
	}
	last := bytes.LastIndex(b, []byte(live[2]))
	b[last+IDLen+3] ^= 0xff
	if err := os.WriteFile(segs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := openDir(t, dir, nil)
	envs, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range envs {
		ids = append(ids, e.ID)
	}
	if strings.Join(ids, ",") != strings.Join(live[:2], ",") {
		t.Fatalf("recovered %v, want %v (no delivered message, nothing past the damage)", ids, live[:2])
	}
}

// A message that waits too long in the log moves to a file, where the
// queue commands of other processes see it; in-process commands see the
// log itself.
func TestIntakeAgesOutAndAdmin(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	d := openIntake(t, dir, c)
	a := commit(t, d, testEnv("a@x.test"), "", "Subject: a\r\n\r\na\r\n")
	b := commit(t, d, testEnv("b@x.test"), "", "Subject: b\r\n\r\nb\r\n")
	if env, err := d.Get(a); err != nil || env.Rcpts[0].Addr != "a@x.test" {
		t.Fatalf("Get from the log: %v %v", env, err)
	}
	if es, err := d.Entries(); err != nil || len(es) != 2 {
		t.Fatalf("Entries: %d %v", len(es), err)
	}
	if err := d.Delete(b); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(b); err != ErrNotFound {
		t.Fatalf("Get after Delete: %v", err)
	}
	d.ageIntake()
	if len(files(t, dir, msgExt)) != 0 {
		t.Fatal("a fresh message left the log")
	}
	c.Add(intakeMaxAge + time.Second)
	d.ageIntake()
	if m := files(t, dir, msgExt); len(m) != 1 || filepath.Base(m[0]) != a+msgExt {
		t.Fatalf("after aging: %v, want %s", m, a+msgExt)
	}
	if s := readAll(t, openDir(t, dir, c), a); s != "Subject: a\r\n\r\na\r\n" {
		t.Fatalf("aged-out bytes %q", s)
	}
	if got, _ := deliver(t, d); got != a {
		t.Fatalf("leased %s, want %s", got, a)
	}
	if len(files(t, dir, msgExt)) != 0 || d.Len() != 0 {
		t.Fatal("delivered message remains")
	}
}

// A message over memDraftMax is a file from the start and commits as one.
func TestIntakeSpill(t *testing.T) {
	dir := t.TempDir()
	d := openIntake(t, dir, nil)
	big := commit(t, d, testEnv("a@x.test"), "", strings.Repeat("z", memDraftMax+1))
	if m := files(t, dir, msgExt); len(m) != 1 || filepath.Base(m[0]) != big+msgExt {
		t.Fatalf("files %v, want %s", m, big+msgExt)
	}
	if s := readAll(t, openDir(t, dir, nil), big); len(s) != memDraftMax+1 {
		t.Fatalf("%d bytes", len(s))
	}
}

// pathBytes reads a draft's bytes where a stage in another process would:
// Size bytes from Offset in the file at Path.
func pathBytes(t *testing.T, dr Draft) string {
	t.Helper()
	f, err := os.Open(dr.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, dr.Size())
	if _, err := f.ReadAt(b, dr.Offset()); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Stages read a draft in memory through a scratch file, which is reused
// (no file per message) and kept current as more is written; the message
// still commits to the log. Scratch files go with Close, and those of a
// process that died go at the next Open.
func TestIntakeScratchForStages(t *testing.T) {
	dir := t.TempDir()
	d := openIntake(t, dir, nil)
	for i, body := range []string{"Subject: long\r\n\r\n" + strings.Repeat("L", 5000), "Subject: s\r\n\r\nshort\r\n"} {
		dr, err := d.NewDraft()
		if err != nil {
			t.Fatal(err)
		}
		dr.Write([]byte(body[:10]))
		if got := pathBytes(t, dr); got != body[:10] {
			t.Fatalf("draft %d: stage reads %q", i, got)
		}
		dr.Write([]byte(body[10:]))
		if got := pathBytes(t, dr); got != body {
			t.Fatalf("draft %d: stage reads %d bytes %.20q..., want the %d written", i, len(got), got, len(body))
		}
		if err := dr.Commit(testEnv("a@x.test"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if m := files(t, dir, msgExt); len(m) != 0 {
		t.Fatalf("files %v: the messages belong in the log", m)
	}
	if n := len(files(t, dir, scratchExt)); n != 1 {
		t.Fatalf("%d scratch files for two drafts one after the other, want 1", n)
	}
	for i := 0; i < 2; i++ {
		deliver(t, d)
	}
	// A refused message (Abort) leaves nothing of itself in the scratch file.
	dr, err := d.NewDraft()
	if err != nil {
		t.Fatal(err)
	}
	dr.Write([]byte("Subject: refused\r\n\r\nsecret-virus-body\r\n"))
	scratch := dr.Path()
	dr.Abort()
	if b, err := os.ReadFile(scratch); err != nil || bytes.Contains(b, []byte("secret-virus-body")) {
		t.Fatalf("after Abort the scratch file holds %q (%v)", b, err)
	}
	d.Close()
	if n := len(files(t, dir, scratchExt)); n != 0 {
		t.Fatalf("%d scratch files after Close", n)
	}
	// Those left by a dead process (no lock) are removed at Open, and so
	// is a log or scratch file it was creating.
	for _, name := range []string{"DEAD0000-0001" + scratchExt, "DEAD0000-0002" + intakeExt + newSuffix} {
		stale := filepath.Join(dir, intakePrefix+name)
		if err := os.WriteFile(stale, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		openDir(t, dir, nil)
		if _, err := os.Stat(stale); !os.IsNotExist(err) {
			t.Fatalf("stale %s survives Open: %v", name, err)
		}
	}
}

// Another process (the CLI) lists and shows what the daemon holds in its
// log, as being delivered, and may not delete it.
func TestIntakeSeenByOtherProcess(t *testing.T) {
	dir := t.TempDir()
	d := openIntake(t, dir, nil)
	id := commit(t, d, testEnv("a@x.test"), "Received: x\r\n", "Subject: s\r\n\r\nin the log\r\n")
	cli := openDir(t, dir, nil)
	es, err := cli.Entries()
	if err != nil || len(es) != 1 || es[0].ID != id || !es[0].Leased || es[0].Size != int64(len("Received: x\r\nSubject: s\r\n\r\nin the log\r\n")) {
		t.Fatalf("CLI lists %+v, %v", es, err)
	}
	if env, err := cli.Get(id); err != nil || env.Rcpts[0].Addr != "a@x.test" {
		t.Fatalf("CLI Get: %v %v", env, err)
	}
	if s := readAll(t, cli, id); s != "Received: x\r\nSubject: s\r\n\r\nin the log\r\n" {
		t.Fatalf("CLI reads %q", s)
	}
	if err := cli.Delete(id); err != ErrLeased {
		t.Fatalf("CLI Delete: %v, want ErrLeased", err)
	}
	if _, err := cli.LeaseID(id); err != ErrLeased {
		t.Fatalf("CLI LeaseID (queue bounce): %v, want ErrLeased", err)
	}
	deliver(t, d)
	if es, _ := cli.Entries(); len(es) != 0 {
		t.Fatalf("delivered, yet the CLI lists %+v", es)
	}
}

// A log recovered by one process (here a CLI run) reaches a Dir that was
// already open (a daemon that started at the same moment): the recovery
// tells it to rescan.
func TestIntakeRecoveryReachesOpenDirs(t *testing.T) {
	dir := t.TempDir()
	daemon := openDir(t, dir, nil) // polls every 5 ms
	dead := openIntake(t, dir, nil)
	id := commit(t, dead, testEnv("a@x.test"), "", "Subject: r\r\n\r\nrecovered\r\n")
	dead.Close() // leaves the segment, as a crash would
	if daemon.Len() != 0 {
		t.Fatalf("daemon indexed %d before recovery", daemon.Len())
	}
	openDir(t, dir, nil) // recovers
	waitFor(t, "the daemon to index the recovered message", func() bool { return daemon.Len() == 1 })
	l, err := daemon.Lease(time.Now())
	if err != nil || l.Envelope().ID != id {
		t.Fatalf("Lease: %v", err)
	}
	l.Release()
}
