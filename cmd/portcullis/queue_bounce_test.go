package main

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/queue"
)

// `queue bounce ID` through the real delivery.Bounce: the message leaves
// the queue and a DSN to its (trusted) sender takes its place.
func TestQueueBounceDelivery(t *testing.T) {
	f := newSpoolFixture(t)
	q := f.store(t, f.queue)
	id := put(t, q, &queue.Envelope{From: "a@example.org", Received: t0, NextAttempt: t0.Add(24 * 3600e9),
		Client: queue.Client{IP: "127.0.0.1", Trusted: true},
		Rcpts:  []*queue.Recipient{{Addr: "x@example.test", Status: queue.RcptPending}}}, "", testBody)
	code, out, errs := runSpool("queue", "bounce", id, "-c", f.cfg)
	if code != 0 || !strings.HasPrefix(out, id+": bounced; DSN ") || !strings.HasSuffix(out, " queued to <a@example.org>\n") {
		t.Fatalf("bounce: %d %q %q", code, out, errs)
	}
	if _, err := q.Get(id); err != queue.ErrNotFound {
		t.Fatalf("bounced message still queued: %v", err)
	}
	envs, err := q.List()
	if err != nil || len(envs) != 1 {
		t.Fatalf("queue after bounce: %d messages, %v; want the DSN", len(envs), err)
	}
	dsn := envs[0]
	if !dsn.IsDSN || dsn.From != "" || dsn.Rcpts[0].Addr != "a@example.org" {
		t.Fatalf("DSN envelope %+v", dsn)
	}
	if want := "DSN " + dsn.ID + " queued"; !strings.Contains(out, want) {
		t.Errorf("bounce said %q, want %q", out, want)
	}
	code, out, _ = runSpool("queue", "show", dsn.ID, "-c", f.cfg)
	if code != 0 || !strings.Contains(out, "Undelivered Mail Returned to Sender") {
		t.Fatalf("queue show of the DSN: %d %q", code, out)
	}
	// The daemon's log traces both, though the command did the work.
	logs := daemonNotes(t, f.queue)
	for _, want := range []string{`msg="queue: bounced" queue_id=` + id + ` by="portcullis queue bounce" dsn_id=` + dsn.ID,
		`msg=queued queue_id=` + dsn.ID + ` by="portcullis queue bounce" dsn_of=` + id} {
		if !strings.Contains(logs, want) {
			t.Errorf("daemon's log lacks %q:\n%s", want, logs)
		}
	}
}

// daemonNotes opens dir as the daemon does (queue.Options.Events) and
// returns what it logs of the notes queue commands left there.
func daemonNotes(t *testing.T, dir string) string {
	t.Helper()
	var logs syncLog
	d, err := queue.Open(dir, queue.Options{Poll: time.Millisecond, Events: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for range 200 {
		if strings.Contains(logs.String(), "by=") {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return logs.String()
}

type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// `queue delete` and `quarantine delete` leave their trace in the daemon's
// log too, even when it was not running.
func TestDeleteNoted(t *testing.T) {
	for _, kind := range []string{"queue", "quarantine"} {
		f := newSpoolFixture(t)
		dir := map[string]string{"queue": f.queue, "quarantine": f.hold}[kind]
		id := put(t, f.store(t, dir), heldEnv(), "", testBody)
		if code, _, errs := runSpool(kind, "delete", id, "-c", f.cfg); code != 0 {
			t.Fatalf("%s delete: %d %s", kind, code, errs)
		}
		want := `msg="` + kind + `: deleted" queue_id=` + id + ` by="portcullis ` + kind + ` delete"`
		if logs := daemonNotes(t, dir); !strings.Contains(logs, want) {
			t.Errorf("daemon's log lacks %q:\n%s", want, logs)
		}
	}
}

// A bounce that makes no DSN says so and why, instead of a bare "bounced"
// an admin would read as "the sender was told".
func TestQueueBounceNoDSN(t *testing.T) {
	tests := []struct {
		name string
		env  *queue.Envelope
		why  string
	}{
		{"null sender", &queue.Envelope{From: "", Client: queue.Client{IP: "127.0.0.1", Trusted: true}},
			"the sender is <>"},
		{"outside sender under bounce: local", &queue.Envelope{From: "a@example.org", Client: queue.Client{IP: "198.51.100.7"}},
			"queue.bounce is local"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newSpoolFixture(t)
			q := f.store(t, f.queue)
			tc.env.Rcpts = []*queue.Recipient{{Addr: "x@example.test", Status: queue.RcptPending}}
			id := put(t, q, tc.env, "", testBody)
			code, out, errs := runSpool("queue", "bounce", id, "-c", f.cfg)
			if code != 0 || !strings.HasPrefix(out, id+": bounced; no DSN sent: "+tc.why) {
				t.Fatalf("bounce: %d %q %q, want the reason %q", code, out, errs, tc.why)
			}
			if envs, err := q.List(); err != nil || len(envs) != 0 {
				t.Fatalf("queue after bounce: %d messages, %v; want none", len(envs), err)
			}
		})
	}
}
