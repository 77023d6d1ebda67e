package smtpd

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/portcullis-mta/portcullis/core/queue"
)

// MAIL is refused 452 4.3.1 when the spool's file system lacks
// queue.min_free plus 1.5 times the declared SIZE (Postfix's
// queue_minfree): no disk has 4 EiB free.
func TestSpoolSpaceAtMail(t *testing.T) {
	cfg := testConfig(t)
	cfg.Queue.Dir = t.TempDir()
	cfg.Limits.MaxMessageBytes = 1 << 62
	cfg.Queue.MinFree = 1 << 62
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "452 4.3.1 Insufficient system storage")

	// With min_free just under what is free, a declared SIZE decides.
	cfg = testConfig(t)
	cfg.Queue.Dir = t.TempDir()
	free, err := freeBytes(cfg.Queue.Dir)
	if err != nil {
		t.Skip("the room on a file system is not known here:", err)
	}
	cfg.Limits.MaxMessageBytes = 4e9
	cfg.Queue.MinFree = max(int64(free)-100<<20, 0)
	ts = startServer(t, cfg, nil)
	r = newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org> SIZE=4000000000", "452 4.3.1 Insufficient system storage")
	r.cmd("MAIL FROM:<a@example.org> SIZE=1000", "250")
	if !strings.Contains(ts.logs.String(), "needed (queue.min_free "+fmt.Sprint(cfg.Queue.MinFree)+", SIZE 4000000000)") {
		t.Errorf("the refusal's cause is not logged:\n%s", ts.logs.String())
	}
}

// fullStore is a queue whose disk fills while a message is written.
type fullStore struct{ queue.Store }

func (s fullStore) NewDraft() (queue.Draft, error) {
	d, err := s.Store.NewDraft()
	return fullDraft{d}, err
}

type fullDraft struct{ queue.Draft }

func (fullDraft) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// A full disk while spooling is 452 4.3.1, not a generic 451.
func TestDiskFullWhileSpooling(t *testing.T) {
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Queue = fullStore{d.Queue} })
	r := newRaw(t, ts.addr(), 2)
	r.toData()
	r.send("Subject: x\r\n\r\nbody\r\n.\r\n")
	r.expect("452 4.3.1 Insufficient system storage")
	if n := len(ts.queued(t)); n != 0 {
		t.Fatalf("%d messages queued", n)
	}
}

// eioStore is a queue whose Commit fails: the disk went bad (or the
// directory fsync failed) after the message was written.
type eioStore struct{ queue.Store }

func (s eioStore) NewDraft() (queue.Draft, error) {
	d, err := s.Store.NewDraft()
	return eioDraft{d}, err
}

type eioDraft struct{ queue.Draft }

func (d eioDraft) Commit(*queue.Envelope, []byte) error {
	_ = d.Draft.Abort()
	return fmt.Errorf("commit: %w", syscall.EIO)
}

// TestCommitFailureIs451: the 250 is our promise that the message is on
// disk (RFC 5321 4.1.1.4). A Commit that fails must be answered 451 4.3.0,
// so the client keeps the message and retries; a 250 there loses the mail,
// and a 5xx bounces what a retry would deliver. The cause goes to the log,
// not to the client, and the session goes on.
func TestCommitFailureIs451(t *testing.T) {
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Queue = eioStore{d.Queue} })
	r := newRaw(t, ts.addr(), 2)
	r.toData()
	r.send(message("lost?") + ".\r\n")
	got := r.expect("451 4.3.0 Temporary local problem, try again later")
	if strings.Contains(got, "input/output") {
		t.Errorf("the cause reached the client: %q", got)
	}
	if n := len(ts.queued(t)); n != 0 {
		t.Fatalf("%d messages queued after a failed commit", n)
	}
	if !strings.Contains(ts.logs.String(), "input/output error") {
		t.Errorf("the commit failure is not logged:\n%s", ts.logs.String())
	}
	r.cmd("MAIL FROM:<a@example.org>", "250")
}
