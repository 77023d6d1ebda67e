package main

import (
	"strings"
	"testing"

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
