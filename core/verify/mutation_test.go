package verify

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/metrics"
)

// Tests for behaviour no other test pinned (a mutation pass over the
// package: each fails with the mutant named in its comment).

// TestLifetimeBoundaries: an answer is asked again in the background from
// its refresh time on, and no longer used from its expiry on (">=", not
// ">").
func TestLifetimeBoundaries(t *testing.T) {
	f := newFixture(t)
	f.check(t, "eve@example.test")
	f.clock.add(NegativeRefresh)
	f.check(t, "eve@example.test")
	f.v.bg.Wait()
	if n := f.p.probes.Load(); n != 2 {
		t.Errorf("at the refresh time: %d probes, want 2 (refreshed)", n)
	}
	f.clock.add(NegativeExpire) // the refreshed answer is now exactly this old
	f.check(t, "eve@example.test")
	if n := f.p.probes.Load(); n != 3 || strings.Count(f.logs.String(), "cached=false") != 2 {
		t.Errorf("at the expiry: %d probes, want 3, and the answer not from the cache:\n%s", n, f.logs.String())
	}
}

// TestClockSteppedBack: an answer from the future (the clock was set
// back) is not used, so it cannot live for ever.
func TestClockSteppedBack(t *testing.T) {
	f := newFixture(t)
	f.check(t, "eve@example.test")
	f.clock.add(-time.Hour)
	f.check(t, "eve@example.test")
	if n := f.p.probes.Load(); n != 2 {
		t.Errorf("%d probes, want 2: an entry younger than zero is dropped", n)
	}
}

// TestRefreshedEntryIsRecent: an answer refreshed in the background
// counts as just used, so the least recently used entry is evicted, not
// the one refreshed (a put over an existing entry moves it to the front).
func TestRefreshedEntryIsRecent(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxEntries = 2 })
	f.check(t, "a@example.test")
	f.clock.add(NegativeRefresh - time.Hour)
	f.check(t, "b@example.test")
	f.clock.add(2 * time.Hour) // a is stale, b is not
	f.p.block = make(chan struct{})
	f.check(t, "a@example.test") // from the cache; its refresh waits
	f.check(t, "b@example.test") // b is now the most recently used...
	close(f.p.block)
	f.v.bg.Wait()                // ...until a's refresh is stored
	f.check(t, "c@example.test") // evicts b
	before := f.p.probes.Load()
	f.check(t, "a@example.test")
	if n := f.p.probes.Load(); n != before {
		t.Errorf("a was evicted (%d probes, want %d): its refresh did not make it recent", n, before)
	}
}

// TestReloadHopCase: a route's next_hop keeps its answers across a
// reload whatever its case (Target.Hop is lower-cased by delivery).
func TestReloadHopCase(t *testing.T) {
	f := newFixture(t)
	f.p.target.Hop = "mbox.example.test:25"
	f.check(t, "bob@example.test")
	f.v.Reload(&config.Config{Routes: []config.Route{{Domains: []string{"example.test"}, NextHop: "MBox.Example.TEST:25", VerifyRecipients: true}}})
	if n := f.v.cache.len(); n != 1 {
		t.Errorf("%d entries after a reload that kept the next hop, want 1", n)
	}
}

// TestDefaults: a zero Options gets the documented timeout and size.
func TestDefaults(t *testing.T) {
	v := New(Options{Prober: &fakeProber{}})
	if v.o.Timeout != DefaultTimeout || v.o.ProbeTimeout != DefaultProbeTimeout || v.o.MaxEntries != DefaultMaxEntries || v.o.Now == nil || v.o.Logger == nil {
		t.Errorf("defaults: timeout %v, probe timeout %v, max entries %d", v.o.Timeout, v.o.ProbeTimeout, v.o.MaxEntries)
	}
}

// TestNoProbePastDeadline: a probe whose time is up when its place comes
// free does not start (select picks at random between a free place and an
// expired context).
func TestNoProbePastDeadline(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.ProbeTimeout = time.Nanosecond })
	for range 50 {
		f.check(t, "bob@example.test")
	}
	if n := f.p.probes.Load(); n != 0 {
		t.Errorf("%d probes started after their deadline", n)
	}
}

// TestCleanBounds: the server's words are cut only past maxText octets,
// and DEL is no printable character.
func TestCleanBounds(t *testing.T) {
	exact := strings.Repeat("x", maxText)
	if got := clean(exact); got != exact {
		t.Errorf("clean of %d octets changed it: %q", maxText, got)
	}
	if got := clean(exact + "y"); got != exact+"..." {
		t.Errorf("clean of %d octets = %q", maxText+1, got)
	}
	if got := clean("a\x7fb~"); got != "a?b~" {
		t.Errorf("clean(DEL) = %q", got)
	}
}

// TestStopWaits: Stop ends the probes under way and waits for them.
func TestStopWaits(t *testing.T) {
	f := newFixture(t)
	f.p.block = make(chan struct{}) // never closed: only Stop ends the probe
	done := make(chan struct{})
	go func() { defer close(done); f.v.Verify(context.Background(), f.log, "bob@example.test") }()
	f.waitProbes(1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.v.Stop(ctx); err != nil {
		t.Errorf("Stop with a probe under way = %v, want it ended", err)
	}
	f.v.mu.Lock()
	n := len(f.v.flights)
	f.v.mu.Unlock()
	if n != 0 {
		t.Errorf("Stop returned with %d probes under way", n)
	}
	<-done
}

// TestMetrics: each outcome is counted once, by where it came from.
func TestMetrics(t *testing.T) {
	m := metrics.New()
	metrics.Enable(m)
	t.Cleanup(func() { metrics.Enable(nil) })
	f := newFixture(t)
	f.check(t, "bob@example.test")
	f.check(t, "bob@example.test")
	f.check(t, "eve@example.test")
	f.check(t, "down@example.test")
	f.check(t, "down@example.test")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`portcullis_recipient_verifications_total{result="deliverable",source="probe"} 1`,
		`portcullis_recipient_verifications_total{result="deliverable",source="cache"} 1`,
		`portcullis_recipient_verifications_total{result="undeliverable",source="probe"} 1`,
		`portcullis_recipient_verifications_total{result="undeliverable",source="cache"} 0`,
		`portcullis_recipient_verifications_total{result="unverified",source="probe"} 2`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
}
