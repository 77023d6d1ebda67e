package queue

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// spoolUID is the daemon's user in the ownership test: nobody.
const spoolUID = 65534

// The queue commands run as root on a spool the daemon's user owns: every
// file and directory they make there (the spool directories themselves,
// lock and control files, messages, DSNs, rewritten envelopes, a release's
// staged copy and marker, corrupt/, intake logs) is given to the spool's
// owner. Run as anyone else, a process makes its own files as always.
func TestRootGivesFilesToSpoolOwner(t *testing.T) {
	parent := t.TempDir()
	want := os.Geteuid()
	if want == 0 {
		want = spoolUID
		if err := os.Chown(parent, spoolUID, spoolUID); err != nil {
			t.Fatal(err)
		}
	}
	c := newClock()
	hdir, qdir := filepath.Join(parent, "quarantine"), filepath.Join(parent, "spool", "queue")
	hold, q := openDir(t, hdir, c), openDir(t, qdir, c)

	// A flush and a bounce rewrite an envelope and queue a DSN.
	env := testEnv("a@x.test")
	env.NextAttempt = c.Now().Add(time.Hour)
	id := commit(t, q, env, "", "queued")
	if err := q.Flush(id); err != nil {
		t.Fatal(err)
	}
	l, err := q.LeaseID(id)
	if err != nil {
		t.Fatal(err)
	}
	dsn := testEnv("sender@example.test")
	dsn.IsDSN = true
	commit(t, q, dsn, "", "a DSN")
	e := l.Envelope()
	e.Attempts++
	if err := l.Update(e); err != nil {
		t.Fatal(err)
	}

	// A release, looked at while its copy is staged and marked.
	hid := commit(t, hold, testEnv("b@x.test"), "", "held")
	marked := false
	moveHook = func(step string) {
		if step == "marked" {
			marked = true
			checkOwner(t, hold.movedPath(hid), want)
			checkOwner(t, q.relPath(hid), want)
		}
	}
	defer func() { moveHook = nil }()
	if err := hold.Move(hid, q, nil); err != nil {
		t.Fatal(err)
	}
	if !marked {
		t.Fatal("release never reached its marked step")
	}

	// Recovery moves a corrupt file (the daemon's) aside into corrupt/.
	bad := filepath.Join(qdir, "0000000000000000"+msgExt)
	if err := os.WriteFile(bad, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(bad, want, want); err != nil {
		t.Fatal(err)
	}
	hold.Close()
	q.Close()
	openDir(t, qdir, c)
	// The intake log and its scratch file, as the daemon's Dir makes them.
	in := openDirOpts(t, hdir, c, Options{Poll: -1, Intake: true})
	dr, err := in.NewDraft()
	if err != nil {
		t.Fatal(err)
	}
	dr.Write([]byte("small"))
	dr.Path()
	if err := dr.Commit(testEnv("c@x.test"), nil); err != nil {
		t.Fatal(err)
	}

	var seen []string
	err = filepath.WalkDir(parent, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		checkOwner(t, p, want)
		if rel, _ := filepath.Rel(parent, p); rel != "." {
			seen = append(seen, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"spool", "spool/queue", "spool/queue/" + lockName, "spool/queue/" + ctlName,
		"spool/queue/" + hid + msgExt, "spool/queue/" + corruptDir, "quarantine/" + ctlName} {
		if !slices.Contains(seen, p) {
			t.Errorf("%s not made; the spool holds %v", p, seen)
		}
	}
	if n := countExt(t, hdir, intakeExt) + countExt(t, hdir, scratchExt); n != 2 {
		t.Errorf("%d intake and scratch files, want 2", n)
	}
	if n := countExt(t, qdir, envExt); n != 1 {
		t.Errorf("%d rewritten envelopes, want 1", n)
	}
	if n := countExt(t, qdir, msgExt); n != 3 {
		t.Errorf("%d messages in the queue, want 3 (queued, DSN, released)", n)
	}
}

func checkOwner(t *testing.T, p string, want int) {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if int(sys.Uid) != want || int(sys.Gid) != want {
		t.Errorf("%s is owned by %d:%d, want %d:%d", p, sys.Uid, sys.Gid, want, want)
	}
}
