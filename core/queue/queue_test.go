package queue

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name, prepend, body string
	}{
		{"plain", "", "Subject: hi\r\n\r\nhello\r\n"},
		{"prepend", "Received: from x by y; Fri, 27 Nov 2026 06:00:00 +0000\r\n", "Subject: hi\r\n\r\nbody\r\n"},
		{"empty body", "X-A: 1\r\n", ""},
		{"8bit", "", "Subject: =?ISO-2022-JP?B?GyRCJEIbKEI=?=\r\n\r\n\x1b$B$3$s$K$A$O\x1b(B\r\n\xff\x00\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			d := openDir(t, t.TempDir(), c)
			dr, err := d.NewDraft()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dr.Write([]byte(tc.body)); err != nil {
				t.Fatal(err)
			}
			// Content stages read the draft before commit.
			raw, err := os.ReadFile(dr.Path())
			if err != nil {
				t.Fatal(err)
			}
			if got := string(raw[dr.Offset() : dr.Offset()+dr.Size()]); got != tc.body {
				t.Fatalf("draft bytes at Path/Offset = %q, want %q", got, tc.body)
			}
			if l, _ := d.List(); len(l) != 0 {
				t.Fatalf("draft visible before Commit: %v", l)
			}
			env := testEnv("a@example.test", "b@example.test")
			if err := dr.Commit(env, []byte(tc.prepend)); err != nil {
				t.Fatal(err)
			}
			if env.ID != dr.ID() || !env.Received.Equal(c.Now()) || !env.NextAttempt.Equal(c.Now()) {
				t.Fatalf("Commit did not fill ID/Received/NextAttempt: %+v", env)
			}
			got, err := d.Get(dr.ID())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normalize(got), normalize(env)) {
				t.Fatalf("Get = %+v\nwant %+v", got, env)
			}
			if b := readAll(t, d, dr.ID()); b != tc.prepend+tc.body {
				t.Fatalf("Open = %q, want %q", b, tc.prepend+tc.body)
			}
			es, _ := d.Entries()
			if len(es) != 1 || es[0].Size != int64(len(tc.prepend+tc.body)) {
				t.Fatalf("Entries = %+v", es)
			}
			if err := dr.Abort(); err != nil {
				t.Fatalf("Abort after Commit: %v", err)
			}
			if _, err := d.Get(dr.ID()); err != nil {
				t.Fatalf("Abort after Commit removed the message: %v", err)
			}
		})
	}
}

// normalize drops monotonic clock readings so DeepEqual compares instants.
func normalize(e *Envelope) *Envelope {
	c := *e
	c.Received = c.Received.Round(0).UTC()
	c.NextAttempt = c.NextAttempt.Round(0).UTC()
	return &c
}

func TestAbortRemovesDraft(t *testing.T) {
	dir := t.TempDir()
	d := openDir(t, dir, nil)
	dr, _ := d.NewDraft()
	dr.Write([]byte("x"))
	if err := dr.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dr.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("draft file still there: %v", err)
	}
	if err := dr.Commit(testEnv("a@x.test"), nil); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
}

func TestListSortedAndGetErrors(t *testing.T) {
	d := openDir(t, t.TempDir(), newClock())
	var want []string
	for i := 0; i < 20; i++ {
		want = append(want, commit(t, d, testEnv("a@x.test"), "", "m"))
	}
	l, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range l {
		got = append(got, e.ID)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List order %v, want commit order %v", got, want)
	}
	for _, id := range []string{"0000000000000000", "../../etc/passw", "", "abc"} {
		if _, err := d.Get(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
		}
		if err := d.Delete(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Delete(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func TestUpdateSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	d := openDir(t, dir, c)
	id := commit(t, d, testEnv("a@x.test", "b@x.test"), "P: 1\r\n", "body\r\n")
	l, err := d.Lease(c.Now())
	if err != nil {
		t.Fatal(err)
	}
	env := l.Envelope()
	env.Rcpts[0].Status = RcptDelivered
	env.Rcpts[1].Attempts, env.Rcpts[1].LastReply = 1, "451 4.3.0 try later"
	env.Attempts, env.DelayNotified = 1, true
	later := c.Now().Add(5 * time.Minute)
	env.NextAttempt = later
	if err := l.Update(env); err != nil {
		t.Fatal(err)
	}
	if err := l.Update(env); err == nil {
		t.Fatal("second Update on an ended lease succeeded")
	}
	if err := l.Release(); err != nil {
		t.Fatalf("Release after Update: %v", err)
	}
	d.Close()

	d2 := openDir(t, dir, c)
	got, err := d2.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rcpts[0].Status != RcptDelivered || got.Rcpts[1].LastReply != "451 4.3.0 try later" ||
		got.Attempts != 1 || !got.DelayNotified || !got.NextAttempt.Equal(later) {
		t.Fatalf("state after reopen: %+v", got)
	}
	if !d2.NextDue().Equal(later) {
		t.Fatalf("NextDue = %v, want %v", d2.NextDue(), later)
	}
	if _, err := d2.Lease(c.Now()); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Lease before due = %v, want ErrEmpty", err)
	}
	l, err = d2.Lease(later)
	if err != nil {
		t.Fatal(err)
	}
	if b := readLease(t, l); b != "P: 1\r\nbody\r\n" {
		t.Fatalf("lease bytes %q", b)
	}
	env = l.Envelope()
	env.Rcpts[1].Status = RcptFailed
	if err := l.Update(env); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{id + msgExt, id + envExt} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after the last recipient was final", p)
		}
	}
	if !d2.NextDue().IsZero() {
		t.Fatalf("NextDue = %v on an empty queue", d2.NextDue())
	}
}

func readLease(t *testing.T, l Lease) string {
	t.Helper()
	rc, err := l.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A lease knows the size of what Open returns, from a file or the intake
// log, without reading it.
func TestLeaseSize(t *testing.T) {
	for _, intake := range []bool{false, true} {
		c := newClock()
		d := openDirOpts(t, t.TempDir(), c, Options{Poll: -1, Intake: intake})
		commit(t, d, testEnv("a@x.test"), "X-Added: 1\r\n", "Subject: s\r\n\r\nbody\r\n")
		l, err := d.Lease(c.Now())
		if err != nil {
			t.Fatal(err)
		}
		got := l.(interface{ Size() int64 }).Size()
		if b := readLease(t, l); got != int64(len(b)) {
			t.Errorf("intake %v: Size %d, Open gives %d bytes", intake, got, len(b))
		}
		l.Release()
	}
}
