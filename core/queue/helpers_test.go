package queue

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openDir(t testing.TB, dir string, c *clock) *Dir {
	t.Helper()
	return openDirOpts(t, dir, c, Options{Poll: 5 * time.Millisecond})
}

// openDirOpts opens dir with opts, the test's logger and clock c (if any),
// and closes it at the end of the test.
func openDirOpts(t testing.TB, dir string, c *clock, opts Options) *Dir {
	t.Helper()
	opts.Logger = testLogger(t)
	if c != nil {
		opts.Now = c.Now
	}
	d, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

func testEnv(rcpts ...string) *Envelope {
	env := &Envelope{From: "sender@example.test", BodyType: "8BITMIME",
		Client: Client{IP: "192.0.2.7", HELO: "client.example.test"}}
	for _, r := range rcpts {
		env.Rcpts = append(env.Rcpts, &Recipient{Addr: r, Status: RcptPending})
	}
	return env
}

// commit stores body (written in small pieces, as SMTP DATA arrives) with
// prepend and returns its ID.
func commit(t testing.TB, s Store, env *Envelope, prepend, body string) string {
	t.Helper()
	dr, err := s.NewDraft()
	if err != nil {
		t.Fatal(err)
	}
	for b := []byte(body); len(b) > 0; {
		n := min(len(b), 7)
		if _, err := dr.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	if err := dr.Commit(env, []byte(prepend)); err != nil {
		t.Fatal(err)
	}
	return dr.ID()
}

func readAll(t testing.TB, s Store, id string) string {
	t.Helper()
	rc, err := s.Open(id)
	if err != nil {
		t.Fatalf("Open(%s): %v", id, err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, rc); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// waitFor polls cond until it holds; the deadline only turns a hang into a
// failure, it asserts nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
