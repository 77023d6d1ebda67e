package queue

import (
	"errors"
	"os"
)

// Delete removes id. ErrLeased while it is being delivered (by this or any
// process), ErrNotFound if there is no such message.
func (d *Dir) Delete(id string) error {
	d.mu.Lock()
	if e := d.idx[id]; e != nil && e.in != nil {
		if e.leased {
			d.mu.Unlock()
			return ErrLeased
		}
		ref := e.in
		d.drop(id)
		d.mu.Unlock()
		d.in.done(ref)
		return nil
	}
	d.mu.Unlock()
	f, err := d.lockMsg(id)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := d.remove(id); err != nil {
		return err
	}
	return d.forget(id)
}

// forget finishes the removal of id's files: the marker of a release cut
// short by a crash goes with its message (not fsynced: a marker that
// outlives its message is cleared by the next recovery, and only ever
// looked at next to its message), the index entry goes unless leased, and
// other processes are told.
func (d *Dir) forget(id string) error {
	if err := os.Remove(d.movedPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	d.mu.Lock()
	if e := d.idx[id]; e != nil && !e.leased {
		d.drop(id)
	}
	d.mu.Unlock()
	return d.touch()
}

// Flush makes id (or, with "", every message not being delivered) due now.
func (d *Dir) Flush(id string) error {
	if id != "" {
		if err := d.flushOne(id); err != nil {
			return err
		}
		if err := d.syncDir(); err != nil {
			return err
		}
	} else {
		names, err := d.names()
		if err != nil {
			return err
		}
		for _, n := range names {
			if id, ok := idOf(n, msgExt); ok {
				err := d.flushOne(id)
				if err != nil && !errors.Is(err, ErrLeased) && !errors.Is(err, ErrNotFound) {
					return err
				}
			}
		}
		if err := d.syncDir(); err != nil { // once for all the renames
			return err
		}
		d.flushIntake("")
	}
	d.flushes.Add(1)
	d.signal()
	return d.touchAs(tokenFlush)
}

func (d *Dir) flushOne(id string) error {
	if d.flushIntake(id) {
		return nil
	}
	f, _, env, err := d.lockAndLoad(id)
	if err != nil {
		return err
	}
	defer f.Close()
	now := d.now()
	if !env.NextAttempt.After(now) {
		return nil
	}
	env.NextAttempt = now
	// The caller fsyncs the directory once after all renames: a flush
	// lost to a crash leaves the old schedule, which is harmless.
	if err := d.writeEnvNoDirSync(env); err != nil {
		return err
	}
	d.mu.Lock()
	d.insert(id, now)
	d.mu.Unlock()
	return nil
}

// flushIntake makes id (or every message, with "") in the intake log due
// now; its due time lives only in memory. It reports whether id was there.
func (d *Dir) flushIntake(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	flush := func(e *entry) {
		if !e.leased && e.next.After(now) {
			d.insert(e.id, now)
		}
	}
	if id != "" {
		e := d.idx[id]
		if e == nil || e.in == nil {
			return false
		}
		flush(e)
		return true
	}
	for _, e := range d.idx {
		if e.in != nil {
			flush(e)
		}
	}
	return true
}
