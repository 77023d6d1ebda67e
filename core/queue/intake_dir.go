package queue

import (
	"bytes"
	"container/heap"
	"errors"
	"io"
	"time"
)

// This file is how a Dir serves the messages held in its intake log: they
// are in the index like any other (entry.in set), leased without a file
// lock (no other process can see them), and moved to a file of their own
// whenever they must wait.

var errSegmentClosed = errors.New("queue: intake segment closed")

// readImage returns ref's bytes as stored: body, then prepend. The log's
// lock keeps Close from closing the segment under the read.
func (in *intake) readImage(ref *intakeRef) ([]byte, error) {
	b := make([]byte, ref.lay.size())
	in.mu.Lock()
	defer in.mu.Unlock()
	if ref.seg.f == nil {
		return nil, errSegmentClosed
	}
	if _, err := ref.seg.f.ReadAt(b, ref.off); err != nil {
		return nil, err
	}
	return b, nil
}

// intakeReader streams ref's message as delivered: prepend, then body. It
// reads a copy, valid whatever becomes of the segment.
func (d *Dir) intakeReader(ref *intakeRef) (io.ReadCloser, error) {
	b, err := d.in.readImage(ref)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(b[ref.lay.bodyLen:]), bytes.NewReader(b[:ref.lay.bodyLen]))), nil
}

// materialize writes e's message (held by the caller's lease) to its own
// file with env, then records it done in the log. The entry stays leased.
func (d *Dir) materialize(e *entry, ref *intakeRef, env *Envelope) error {
	img, err := d.in.readImage(ref) // body, then prepend
	if err != nil {
		return err
	}
	dr, err := d.newDraft(e.id)
	if err != nil {
		return err
	}
	if _, err := dr.Write(img[:ref.lay.bodyLen]); err != nil {
		dr.Abort()
		return err
	}
	if err := dr.Commit(env, img[ref.lay.bodyLen:]); err != nil {
		return err
	}
	d.mu.Lock()
	e.in = nil
	d.mu.Unlock()
	d.in.done(ref)
	return nil
}

// spillEntry moves id from the log to its own file, if it is in the log
// and not leased. ErrLeased if it is.
func (d *Dir) spillEntry(id string) error {
	d.mu.Lock()
	e := d.idx[id]
	if e == nil || e.in == nil {
		d.mu.Unlock()
		return nil
	}
	if e.leased {
		d.mu.Unlock()
		return ErrLeased
	}
	d.takeLocked(e)
	d.mu.Unlock()
	return d.spillTaken(e)
}

// takeLocked marks e leased by this Dir (d.mu held).
func (d *Dir) takeLocked(e *entry) {
	if e.pos >= 0 {
		heap.Remove(&d.due, e.pos)
	}
	e.leased = true
}

// spillTaken materializes a taken entry with its committed envelope and
// its current schedule, then gives it back.
func (d *Dir) spillTaken(e *entry) error {
	ref, next := e.in, e.next
	env := cloneEnv(ref.env)
	env.NextAttempt = next
	err := d.materialize(e, ref, env)
	d.unlease(e, next)
	return err
}

// ageIntake moves messages that have waited in the log for intakeMaxAge
// (every worker busy, or the next hop slow) to files of their own, where
// the queue commands of other processes see them.
func (d *Dir) ageIntake() {
	if d.in == nil {
		return
	}
	cutoff := d.now().Add(-intakeMaxAge)
	var todo []*entry
	d.mu.Lock()
	for _, e := range d.idx {
		if e.in != nil && !e.leased && e.in.at.Before(cutoff) {
			d.takeLocked(e)
			if todo = append(todo, e); len(todo) == 100 {
				break
			}
		}
	}
	d.mu.Unlock()
	for _, e := range todo {
		if err := d.spillTaken(e); err != nil {
			d.log.Warn("queue: cannot move a message out of the intake log", "queue_id", e.id, "err", err)
		}
	}
}

// intakeEntry returns id's log reference and current schedule, or nil.
func (d *Dir) intakeEntry(id string) (*intakeRef, time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e := d.idx[id]; e != nil && e.in != nil {
		return e.in, e.next, e.leased
	}
	return nil, time.Time{}, false
}

// intakeEntries lists the messages in the log, for Entries.
func (d *Dir) intakeEntries() []Entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Entry
	for _, e := range d.idx {
		if e.in != nil {
			env := cloneEnv(e.in.env)
			env.NextAttempt = e.next
			out = append(out, Entry{env, e.in.lay.size(), e.leased})
		}
	}
	return out
}

// cloneEnv copies an envelope deeply enough that a holder may change its
// recipients' states.
func cloneEnv(e *Envelope) *Envelope {
	c := *e
	c.Rcpts = make([]*Recipient, len(e.Rcpts))
	for i, r := range e.Rcpts {
		rc := *r
		c.Rcpts[i] = &rc
	}
	return &c
}
