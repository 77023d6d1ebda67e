package queue

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// releaseCrashEnv holds "SRC DST ID STEP" when the test binary runs as the
// release crash test's child.
const releaseCrashEnv = "PORTCULLIS_QUEUE_RELEASE_CRASH_CHILD"

// releaseCrashChild does what `portcullis quarantine release ID` does (Get,
// then Move into the queue) and SIGKILLs itself right after the release
// step STEP. It exits 4 if there is no such message, 3 on an error, 0 if
// the release finished without reaching STEP.
func releaseCrashChild(spec string) {
	f := strings.Fields(spec)
	if len(f) != 4 {
		os.Exit(2)
	}
	src, err := Open(f[0], Options{Poll: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	dst, err := Open(f[1], Options{Poll: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	moveHook = func(step string) {
		if step == f[3] {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	if _, err := src.Get(f[2]); errors.Is(err, ErrNotFound) {
		os.Exit(4)
	}
	if err := src.Move(f[2], dst, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(0)
}

// A release (Move into another Dir) killed after any of its steps, then
// retried, puts the message in the queue exactly once: whether or not the
// daemon delivered (and removed) a copy in between, and whatever crash
// recovery of either directory did. Each event is one of:
//
//	kill:STEP  a process releases the message and is SIGKILLed after STEP
//	deliver    a daemon opens the queue (recovering it) and delivers all
//	release    an admin releases the message again, if it is still held
func TestReleaseCrashAtEachStep(t *testing.T) {
	steps := []string{"staged", "marked", "committed", "removed"}
	cases := map[string][]string{}
	for _, s := range steps {
		cases["kill after "+s] = []string{"kill:" + s, "release", "deliver"}
		cases["kill after "+s+", delivered, released again"] = []string{"kill:" + s, "deliver", "release", "deliver"}
	}
	// A retry cut short too, at each step it still has to do.
	cases["kill after marked, then after committed"] = []string{"kill:marked", "deliver", "kill:committed", "deliver", "release", "deliver"}
	cases["kill after committed, delivered, then after removed"] = []string{"kill:committed", "deliver", "kill:removed", "release", "deliver"}
	cases["kill after staged twice"] = []string{"kill:staged", "deliver", "kill:staged", "release", "deliver"}
	for name, events := range cases {
		t.Run(name, func(t *testing.T) { testReleaseCrash(t, events) })
	}
}

func testReleaseCrash(t *testing.T, events []string) {
	root := t.TempDir()
	hdir, qdir := filepath.Join(root, "quarantine"), filepath.Join(root, "queue")
	hold, err := Open(hdir, Options{Logger: testLogger(t), Poll: -1})
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv("a@x.test")
	env.Reason = "spam score 12.5"
	id := commit(t, hold, env, "X-Spam: yes\r\n", "the body\r\n")
	hold.Close()

	delivered := map[string][]string{} // ID -> the bytes of each delivery
	for _, ev := range events {
		switch step, isKill := strings.CutPrefix(ev, "kill:"); {
		case isKill:
			killRelease(t, hdir, qdir, id, step)
		case ev == "deliver":
			deliverAll(t, qdir, delivered)
		case ev == "release":
			releaseAgain(t, hdir, qdir, id)
		default:
			t.Fatalf("bad event %q", ev)
		}
	}
	if got := delivered[id]; len(got) != 1 || got[0] != "X-Spam: yes\r\nthe body\r\n" {
		t.Errorf("%s delivered %d times (%q), want once", id, len(got), got)
	}
	if len(delivered) != 1 {
		t.Errorf("deliveries: %v, want only %s", delivered, id)
	}
	// Nothing left behind but each directory's lock and control file.
	for _, dir := range []string{hdir, qdir} {
		for _, n := range dirNames(t, dir) {
			if n != lockName && n != ctlName {
				t.Errorf("%s left in %s", n, filepath.Base(dir))
			}
		}
	}
}

// killRelease runs the release in a child that SIGKILLs itself after step.
func killRelease(t *testing.T, hdir, qdir, id, step string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReleaseCrashAtEachStep$")
	cmd.Env = append(os.Environ(), releaseCrashEnv+"="+strings.Join([]string{hdir, qdir, id, step}, " "))
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("release child did not die after %s: %v", step, err)
	}
}

// deliverAll is a daemon starting on the queue and delivering every
// message in it.
func deliverAll(t *testing.T, qdir string, delivered map[string][]string) {
	t.Helper()
	q, err := Open(qdir, Options{Logger: testLogger(t), Poll: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for {
		l, err := q.Lease(time.Now().Add(time.Hour))
		if errors.Is(err, ErrEmpty) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		env := l.Envelope()
		delivered[env.ID] = append(delivered[env.ID], readLease(t, l))
		for _, r := range env.Rcpts {
			r.Status = RcptDelivered
		}
		if err := l.Update(env); err != nil {
			t.Fatal(err)
		}
	}
}

// releaseAgain is the admin running the release once more, as the CLI
// does: only if the quarantine still lists the message.
func releaseAgain(t *testing.T, hdir, qdir, id string) {
	t.Helper()
	hold, err := Open(hdir, Options{Logger: testLogger(t), Poll: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	q, err := Open(qdir, Options{Logger: testLogger(t), Poll: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := hold.Get(id); errors.Is(err, ErrNotFound) {
		return
	}
	if err := hold.Move(id, q, nil); err != nil {
		t.Fatalf("release again: %v", err)
	}
}

// A marked release whose message an admin deletes instead of releasing
// again takes its marker along; a marker whose message is gone is cleared
// by recovery, one whose message is there is kept.
func TestReleaseMarkerCleared(t *testing.T) {
	c := newClock()
	hdir := t.TempDir()
	hold := openDir(t, hdir, c)
	kept := commit(t, hold, testEnv("a@x.test"), "", "kept")
	deleted := commit(t, hold, testEnv("b@x.test"), "", "deleted")
	for _, id := range []string{kept, deleted, "0000000000000000"} {
		if err := hold.mark(id, "elsewhere"); err != nil {
			t.Fatal(err)
		}
	}
	if err := hold.Delete(deleted); err != nil {
		t.Fatal(err)
	}
	hold.Close()
	openDir(t, hdir, c) // alone: recovers
	want := []string{ctlName, lockName, kept + movedExt, kept + msgExt}
	if got := dirNames(t, hdir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("after recovery: %v, want %v", got, want)
	}
}
