package queue

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/internal/logbuf"
)

// TestNotesReachTheDaemonsLog: what a queue command did to a message (a
// Note) is logged by the daemon's Dir with the message's queue ID, at once
// when it runs and at its next start when it did not, and only once.
func TestNotesReachTheDaemonsLog(t *testing.T) {
	dir := t.TempDir()
	cli := openDirOpts(t, dir, nil, Options{Poll: -1})
	// Left while no daemon ran.
	if err := cli.Note("DN6A000000000001", "queue: deleted", "by", "portcullis queue delete"); err != nil {
		t.Fatal(err)
	}
	var logs logbuf.Buffer
	d, err := Open(dir, Options{Poll: 5 * time.Millisecond, Events: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	waitFor(t, "the note left before the start", func() bool {
		return strings.Contains(logs.String(), `msg="queue: deleted" queue_id=DN6A000000000001 by="portcullis queue delete" at=`)
	})
	// Left while it runs.
	if err := cli.Note("DN6A000000000002", "queued", "dsn_of", "DN6A000000000001"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the note left while it runs", func() bool {
		return strings.Contains(logs.String(), `msg=queued queue_id=DN6A000000000002 dsn_of=DN6A000000000001`)
	})
	if st, err := os.Stat(cli.eventsPath()); err != nil || st.Size() != 0 {
		t.Errorf("notes not cleared once logged: %v %v", st, err)
	}
	time.Sleep(30 * time.Millisecond) // a few more polls
	if n := strings.Count(logs.String(), "queue_id=DN6A000000000001 by="); n != 1 {
		t.Errorf("the first note logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestNoteBeforeRescan: a message another process queued with a note (a
// DSN of `queue bounce`) has its note logged before the rescan that hands
// it to delivery: the DSN's first line in the daemon's log is its
// "queued ... dsn_of=", not a delivery attempt.
func TestNoteBeforeRescan(t *testing.T) {
	dir := t.TempDir()
	var logs logbuf.Buffer
	d, err := Open(dir, Options{Poll: 5 * time.Millisecond, Events: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cli := openDirOpts(t, dir, nil, Options{Poll: -1})
	id := commit(t, cli, testEnv("c@x.test"), "", "dsn")
	if err := cli.Note(id, "queued", "dsn_of", "DN6A000000000001"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both lines", func() bool {
		s := logs.String()
		return strings.Contains(s, "msg=queued queue_id="+id) && strings.Contains(s, `added by another process" queue_id=`+id)
	})
	s := logs.String()
	if strings.Index(s, "msg=queued queue_id="+id) > strings.Index(s, `added by another process" queue_id=`+id) {
		t.Fatalf("the note was logged after the rescan:\n%s", s)
	}
}
