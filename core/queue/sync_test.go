package queue

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// syncLog records the queue's fsyncs and fdatasyncs while a test watches,
// each with what was on disk at that moment (see the tests), and restores
// the real calls when the test ends. A process killed after Commit returned
// keeps its pages in the kernel either way, so no crash test can tell
// whether the syncs happened: only a power failure could. This is where
// their order is checked.
type syncLog struct {
	mu     sync.Mutex
	events []string
}

func watchSyncs(t *testing.T, describe func(f *os.File) string, describeFd func(fd int) string) *syncLog {
	t.Helper()
	l := &syncLog{}
	fsync = func(f *os.File) error {
		l.add(describe(f))
		return f.Sync()
	}
	fdatasync = func(fd int) error {
		l.add(describeFd(fd))
		return sysFdatasync(fd)
	}
	t.Cleanup(func() { fsync, fdatasync = (*os.File).Sync, sysFdatasync })
	return l
}

func (l *syncLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.events, "; ")
}

// Commit of a message file: the draft is fsynced while it still has its
// temporary name (its bytes on disk before any reader or recovery can take
// it for a message), and the directory is fsynced after the rename (the
// name on disk), both before Commit returns and the client is told 250.
// Without the first a power failure could leave an empty or partial .msg;
// without the second, none at all for a message we accepted.
func TestCommitSyncsFileThenRenameThenDir(t *testing.T) {
	dir := t.TempDir()
	d := openDirOpts(t, dir, nil, Options{Poll: -1})
	dr, err := d.NewDraft()
	if err != nil {
		t.Fatal(err)
	}
	final := d.msgPath(dr.ID())
	state := func() string {
		if _, err := os.Stat(final); err == nil {
			return "renamed"
		}
		return "not renamed"
	}
	log := watchSyncs(t, func(f *os.File) string {
		what := "file"
		if f.Name() == dir {
			what = "dir"
		}
		return what + " (" + state() + ")"
	}, func(int) string { return "fdatasync" })
	if _, err := dr.Write([]byte("Subject: s\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := dr.Commit(testEnv("a@x.test"), nil); err != nil {
		t.Fatal(err)
	}
	if got, want := log.String(), "file (not renamed); dir (renamed)"; got != want {
		t.Fatalf("syncs during Commit: %s\nwant: %s", got, want)
	}
}

// Commit to the intake log returns only after an fdatasync of the segment
// that began once the message's record was in it: the group commit that
// lets the log take the place of a file per message.
func TestIntakeCommitSyncsItsRecord(t *testing.T) {
	dir := t.TempDir()
	d := openIntake(t, dir, nil)
	// A first message creates the segment; the one watched is written to
	// it as every later one is.
	commit(t, d, testEnv("a@x.test"), "", "Subject: first\r\n\r\none\r\n")
	dr, err := d.NewDraft()
	if err != nil {
		t.Fatal(err)
	}
	id := []byte(dr.ID())
	seg := make([]byte, segCap)
	log := watchSyncs(t, func(f *os.File) string { return "fsync " + f.Name() }, func(fd int) string {
		n, err := unix.Pread(fd, seg, 0)
		if err != nil {
			return "fdatasync (unreadable: " + err.Error() + ")"
		}
		return fmt.Sprintf("fdatasync (record written: %v)", bytes.Contains(seg[:n], id))
	})
	if _, err := dr.Write([]byte("Subject: s\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := dr.Commit(testEnv("a@x.test"), nil); err != nil {
		t.Fatal(err)
	}
	if got, want := log.String(), "fdatasync (record written: true)"; got != want {
		t.Fatalf("syncs during Commit: %s\nwant: %s", got, want)
	}
}
