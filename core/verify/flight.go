package verify

import (
	"context"
	"errors"
	"fmt"
)

// flight is one probe under way; every RCPT for its address waits for
// the same one (Postfix's verify daemon does likewise: one probe per
// address at a time).
type flight struct {
	done chan struct{} // closed when a is set
	a    Answer
}

// errBusy is a probe that found no free place to its next hop in time.
var errBusy = errors.New("too many probes through the route at once")

// start returns the probe for key k under way, or starts one. It runs on
// its own time (Options.ProbeTimeout), not the session's: a client that
// hangs up or stops waiting does not cut short the answer others wait
// for, or that the cache keeps for the next try.
func (v *Verifier) start(t Target, k, rcpt string) *flight {
	v.mu.Lock()
	defer v.mu.Unlock()
	if f, ok := v.flights[k]; ok {
		return f
	}
	f := &flight{done: make(chan struct{})}
	v.flights[k] = f
	slot := v.slotsFor(t)
	v.bg.Add(1)
	go func() {
		defer v.bg.Done()
		f.a = v.probe(slot, rcpt)
		if e := v.entryOf(k, f.a); e != nil {
			v.cache.put(e)
		}
		v.mu.Lock()
		delete(v.flights, k)
		v.mu.Unlock()
		close(f.done)
	}()
	return f
}

// slotsFor is the semaphore of t's route and next hop (two routes to one
// server with different concurrency each keep theirs), made anew when a
// reload changed the limit (probes holding the old one give their place
// back to it). v.mu is held.
func (v *Verifier) slotsFor(t Target) chan struct{} {
	k := fmt.Sprintf("%d %s", t.Route, t.Hop)
	s := v.slots[k]
	if s == nil || cap(s) != max(t.Limit, 1) {
		s = make(chan struct{}, max(t.Limit, 1))
		v.slots[k] = s
	}
	return s
}

// probe asks the next hop once a place to it is free, all within
// Options.ProbeTimeout.
func (v *Verifier) probe(slot chan struct{}, rcpt string) Answer {
	ctx, cancel := context.WithTimeout(v.halt, v.o.ProbeTimeout)
	defer cancel()
	select {
	case slot <- struct{}{}:
		defer func() { <-slot }()
	case <-ctx.Done():
		return Answer{Err: errBusy}
	}
	if ctx.Err() != nil { // both were ready: select took either
		return Answer{Err: errBusy}
	}
	return v.o.Prober.Probe(ctx, rcpt)
}

// entryOf is the cache entry for a definite answer (the server took the
// address, or refused it for good), nil for any other.
func (v *Verifier) entryOf(k string, a Answer) *entry {
	if a.Mail != nil || a.Rcpt == nil || (a.Rcpt.Code/100 != 2 && !refusesMailbox(a.Rcpt)) {
		return nil
	}
	return &entry{key: k, ok: a.Rcpt.Code/100 == 2, reply: a.Rcpt, host: a.Host, at: v.o.Now()}
}
