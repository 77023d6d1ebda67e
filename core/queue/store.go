package queue

import (
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"syscall"
	"time"
)

// How long a message is passed over before trying again, so a worker does
// not spin on it: busyBackoff when another process holds its lock (a CLI
// command, another daemon's worker), errBackoff when it could not be read
// (EMFILE, EIO): it stays queued and is retried, never forgotten.
const (
	busyBackoff = time.Second
	errBackoff  = 30 * time.Second
)

// Lease takes the message due soonest with NextAttempt <= now, or ErrEmpty.
func (d *Dir) Lease(now time.Time) (Lease, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	later := map[string]time.Time{} // set aside until the loop is done
	defer func() {
		for id, t := range later {
			d.insert(id, t)
		}
	}()
	for len(d.due) > 0 && !d.due[0].next.After(now) {
		e := d.due[0]
		l, err := d.tryLease(e)
		switch {
		case err == nil:
			return l, nil
		case errors.Is(err, ErrLeased):
			d.drop(e.id)
			later[e.id] = now.Add(busyBackoff)
		case errors.Is(err, errNotDue):
			d.insert(e.id, l.env.NextAttempt)
		case errors.Is(err, ErrNotFound):
			d.drop(e.id)
		case errors.Is(err, errCorrupt):
			d.drop(e.id)
			d.moveCorrupt(e.id, e.id+msgExt, err)
		default:
			d.drop(e.id)
			later[e.id] = now.Add(errBackoff)
			d.log.Error("queue: cannot read message; will retry", "queue_id", e.id, "err", err)
		}
	}
	return nil, ErrEmpty
}

var errNotDue = errors.New("queue: rescheduled by another process")

// tryLease locks e's file and reads its current envelope (d.mu held). The
// disk is the truth: another process may have changed or removed it.
func (d *Dir) tryLease(e *entry) (*lease, error) {
	if e.in != nil {
		d.takeLocked(e)
		return &lease{d: d, e: e, in: e.in, lay: e.in.lay, env: cloneEnv(e.in.env), due: e.next}, nil
	}
	f, lay, env, err := d.lockAndLoad(e.id)
	if err != nil {
		return nil, err
	}
	l := &lease{d: d, e: e, f: f, lay: lay, env: env, due: env.NextAttempt}
	if env.NextAttempt.After(e.next) {
		f.Close()
		return l, errNotDue
	}
	heap.Remove(&d.due, e.pos)
	e.leased = true
	return l, nil
}

// Get returns id's current envelope, read from disk.
func (d *Dir) Get(id string) (*Envelope, error) {
	if ref, next, _ := d.intakeEntry(id); ref != nil {
		env := cloneEnv(ref.env)
		env.NextAttempt = next
		return env, nil
	}
	_, env, err := d.openMeta(id)
	if errors.Is(err, ErrNotFound) && ValidID(id) {
		if _, fenv, _, ok := d.foreignGet(id); ok {
			return fenv, nil
		}
	}
	return env, err
}

// openMeta reads id's layout and envelope without locking: the .msg never
// changes once committed and the side file is replaced atomically.
func (d *Dir) openMeta(id string) (layout, *Envelope, error) {
	if !ValidID(id) {
		return layout{}, nil, ErrNotFound
	}
	f, err := os.Open(d.msgPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return layout{}, nil, ErrNotFound
	}
	if err != nil {
		return layout{}, nil, err
	}
	defer f.Close()
	return loadMeta(f, d.envPath(id), id)
}

// Open streams id's bytes: prepend, then body.
func (d *Dir) Open(id string) (io.ReadCloser, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	if ref, _, _ := d.intakeEntry(id); ref != nil {
		return d.intakeReader(ref)
	}
	f, err := os.Open(d.msgPath(id))
	if errors.Is(err, os.ErrNotExist) {
		if lay, _, img, ok := d.foreignGet(id); ok {
			return io.NopCloser(lay.reader(bytes.NewReader(img))), nil
		}
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	lay, _, err := readTrailer(f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	return readCloser{lay.reader(f), f}, nil
}

// Entry is one message as List shows it, with its size and whether some
// process holds its lease right now.
type Entry struct {
	*Envelope
	Size   int64 `json:"size"`             // bytes as delivered (prepend and body)
	Leased bool  `json:"leased,omitempty"` // being delivered (or otherwise held) at the time of listing
}

// Entries lists the messages on disk with their sizes, sorted by ID.
// Messages that vanish or do not parse while listing are left out.
func (d *Dir) Entries() ([]Entry, error) {
	names, err := d.names()
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	out := d.intakeEntries()
	onDisk := map[string]bool{}
	for _, n := range names {
		id, ok := idOf(n, msgExt)
		if !ok {
			continue
		}
		lay, env, err := d.openMeta(id)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				d.log.Warn("queue: unreadable message", "queue_id", id, "dir", d.path, "err", err)
			}
			continue
		}
		out = append(out, Entry{env, lay.size(), d.isLeased(id)})
		onDisk[id] = true
	}
	// Another process's log: a message written out to its file meanwhile
	// is listed once, from the file.
	for _, e := range d.foreignEntries() {
		if !onDisk[e.ID] {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// isLeased tests id's lock with a shared, non-blocking flock, released at
// once. (A worker trying to lease it in that instant passes it over for a
// second; that is all the harm.)
func (d *Dir) isLeased(id string) bool {
	f, err := os.Open(d.msgPath(id))
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	return errors.Is(err, syscall.EWOULDBLOCK)
}

// Len is the number of messages in the index (the daemon's view), for a
// queue-size gauge.
func (d *Dir) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.idx)
}

// List returns every message's envelope, sorted by ID.
func (d *Dir) List() ([]*Envelope, error) {
	es, err := d.Entries()
	envs := make([]*Envelope, len(es))
	for i, e := range es {
		envs[i] = e.Envelope
	}
	return envs, err
}

// LeaseID takes message id whatever its due time (`portcullis queue
// bounce`). ErrLeased if anyone holds it, ErrNotFound if there is none.
func (d *Dir) LeaseID(id string) (Lease, error) {
	if err := d.spillEntry(id); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f, lay, env, err := d.lockAndLoad(id)
	if err != nil {
		return nil, err
	}
	e := d.insert(id, env.NextAttempt)
	if e.pos >= 0 {
		heap.Remove(&d.due, e.pos)
	}
	e.leased = true
	return &lease{d: d, e: e, f: f, lay: lay, env: env, due: env.NextAttempt}, nil
}
