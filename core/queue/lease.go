package queue

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// lockMsg opens id's message file and takes its flock without waiting: the
// one lock that makes a lease exclusive across processes. ErrLeased if
// someone holds it, or if it is in another process's intake log (being
// delivered there); ErrNotFound if the message is gone (also when it was
// deleted between open and lock).
func (d *Dir) lockMsg(id string) (*os.File, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	p := d.msgPath(id)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		if _, _, _, ok := d.foreignGet(id); ok {
			return nil, ErrLeased
		}
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLeased
		}
		return nil, err
	}
	fst, err1 := f.Stat()
	pst, err2 := os.Stat(p)
	if err1 != nil || err2 != nil || !os.SameFile(fst, pst) {
		f.Close()
		return nil, ErrNotFound
	}
	return f, nil
}

// lockAndLoad is lockMsg followed by loadMeta: the locked file, its layout
// and its current envelope. On error nothing stays open.
func (d *Dir) lockAndLoad(id string) (*os.File, layout, *Envelope, error) {
	f, err := d.lockMsg(id)
	if err != nil {
		return nil, layout{}, nil, err
	}
	lay, env, err := loadMeta(f, d.envPath(id), id)
	if err != nil {
		f.Close()
		return nil, layout{}, nil, err
	}
	return f, lay, env, nil
}

// writeEnv durably replaces id's side file (caller holds the message lock):
// tmp file, fsync, rename, fsync directory. A crash leaves the old state or
// the new one, never a mix.
func (d *Dir) writeEnv(env *Envelope) error {
	if err := d.writeEnvNoDirSync(env); err != nil {
		return err
	}
	return d.syncDir()
}

// writeEnvNoDirSync is writeEnv but leaves the directory fsync to the
// caller. The file itself is always fsynced before the rename: otherwise a
// crash could leave an empty side file where the old one stood.
func (d *Dir) writeEnvNoDirSync(env *Envelope) error {
	js, err := json.Marshal(env)
	if err != nil {
		return err
	}
	tmp := d.envPath(env.ID) + tmpExt
	err = d.createFile(tmp, func(w io.Writer) error {
		_, err := w.Write(append(js, '\n'))
		return err
	})
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, d.envPath(env.ID)); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// removeFile is os.Remove for remove's unlinks: a test stops it between
// them, where a crash could come (TestRemoveCutShortRedeliversNothing).
var removeFile = os.Remove

// remove deletes a message whose lock the caller holds. The .msg goes
// first: it is the message; a side file left by a crash after that is an
// orphan that the next recovery removes. The other way round, a crash
// would leave the .msg with the envelope it was committed with, and its
// delivered recipients would get it again.
func (d *Dir) remove(id string) error {
	if err := removeFile(d.msgPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := removeFile(d.envPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return d.syncDir()
}

// lease is a message held by this Dir for delivery.
type lease struct {
	d     *Dir
	e     *entry
	f     *os.File   // the .msg, flocked: closing it ends the lease; nil for intake
	in    *intakeRef // the message in the intake log, until it is written out
	lay   layout
	due   time.Time // NextAttempt on disk when leased: Release keeps it, whatever the caller did to env
	env   *Envelope
	mu    sync.Mutex
	ended bool
}

var errLeaseEnded = errors.New("queue: lease already updated or released")

func (l *lease) Envelope() *Envelope { return l.env }

// Size is the size of what Open returns, known from the message's layout
// without reading it (delivery declares it in SIZE).
func (l *lease) Size() int64 {
	if l.in != nil {
		return l.in.lay.size()
	}
	return l.lay.size()
}

// Open streams prepend then body from a file descriptor of its own, so the
// reader stays valid whatever happens to the lease.
func (l *lease) Open() (io.ReadCloser, error) {
	if l.in != nil {
		return l.d.intakeReader(l.in)
	}
	f, err := os.Open(l.d.msgPath(l.e.id))
	if err != nil {
		return nil, err
	}
	return readCloser{l.lay.reader(f), f}, nil
}

// Update records env durably and ends the lease: the message goes back in
// the schedule at env.NextAttempt, or is removed when nothing is pending.
func (l *lease) Update(env *Envelope) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return errLeaseEnded
	}
	env.ID = l.e.id
	if env.NextAttempt.IsZero() { // NextDue reads a zero time as "nothing queued"
		env.NextAttempt = l.d.now()
	}
	if l.in != nil {
		return l.updateIntake(env)
	}
	if len(env.Pending()) == 0 {
		if err := l.d.remove(env.ID); err != nil {
			return err // lease kept: the caller may retry or Release
		}
		l.end(time.Time{}, true)
		l.d.notify(env.ID)
		return nil
	}
	if err := l.d.writeEnv(env); err != nil {
		return err
	}
	l.env = env
	l.end(env.NextAttempt, false)
	l.d.notify(env.ID)
	return nil
}

// Release gives the message back unchanged. A no-op after Update.
func (l *lease) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ended {
		l.end(l.due, false)
	}
	return nil
}

// Postpone gives the message back unchanged on disk, but passed over by
// this Dir until until (or until Hasten): a message that could not be
// tried now for a reason of this process's own (its destination has as
// many messages waiting as it may), with no attempt to record. Nothing
// is written, so it costs no fsync, and after a restart the message is due
// as its envelope says. A no-op after Update or Release.
func (l *lease) Postpone(until time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ended {
		l.end(until, false)
	}
	return nil
}

// end drops the flock, then settles the index: the other way round, this
// Dir could pick the message again while still holding the lock, fail, and
// back off for nothing.
func (l *lease) end(next time.Time, removed bool) {
	l.ended = true
	if l.f != nil {
		l.f.Close()
	}
	if removed {
		l.d.mu.Lock()
		l.e.leased = false
		if l.d.idx[l.e.id] == l.e {
			l.d.drop(l.e.id)
		}
		l.d.mu.Unlock()
	} else {
		l.d.unlease(l.e, next)
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// updateIntake is Update for a message in the intake log: done when
// nothing is pending, else written out to a file of its own with env.
func (l *lease) updateIntake(env *Envelope) error {
	ref := l.in
	if len(env.Pending()) == 0 {
		// Out of the index first: no reader may find it in a segment
		// that the done record lets be reused.
		l.end(time.Time{}, true)
		l.d.in.done(ref)
		return nil
	}
	if err := l.d.materialize(l.e, ref, env); err != nil {
		return err
	}
	l.in, l.env = nil, env
	l.end(env.NextAttempt, false)
	return nil
}
