package queue

import (
	"fmt"
	"sync"
)

// memDraft holds a message in memory until Commit appends it to the intake
// log. A message that outgrows memDraftMax moves to an ordinary file draft
// and is committed as its own file; one that stages read (Path) is copied
// to a scratch file as well.
type memDraft struct {
	d     *Dir
	id    string
	buf   []byte
	file  *draft       // after spilling
	scr   *scratchFile // holds a copy of buf for stages, once Path was called
	err   error        // a failed spill: Commit must fail
	ended bool
	copy  bool // from NewDraftAs: it spills to ID.copy.tmp
	// durable is called once the message is durable, before it is
	// indexed for delivery (OnDurable).
	durable func()
}

// OnDurable sets f to be called by Commit once the message is durable
// (DurableNotifier).
func (m *memDraft) OnDurable(f func()) { m.durable = f }

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func getBuf() []byte { return (*bufPool.Get().(*[]byte))[:0] }

func putBuf(b []byte) {
	if b != nil && cap(b) <= memDraftMax*2 {
		bufPool.Put(&b)
	}
}

func (m *memDraft) ID() string { return m.id }

func (m *memDraft) Write(p []byte) (int, error) {
	switch {
	case m.ended:
		return 0, errDraftEnded
	case m.err != nil:
		return 0, m.err
	case m.file != nil:
		return m.file.Write(p)
	case len(m.buf)+len(p) > memDraftMax:
		if err := m.spill(); err != nil {
			return 0, err
		}
		return m.file.Write(p)
	}
	if m.scr != nil {
		if _, err := m.scr.f.WriteAt(p, int64(len(m.buf))); err != nil {
			m.err = err
			return 0, err
		}
	}
	m.buf = append(m.buf, p...)
	return len(p), nil
}

// Bytes returns the message as written so far while it is in memory
// (nil once it moved to a file). It is valid until Commit or Abort.
func (m *memDraft) Bytes() []byte { return m.buf }

// dropScratch gives the scratch file back. With wipe (the message was
// refused or abandoned) its bytes are overwritten first: nothing of a
// refused message may stay in the spool.
func (m *memDraft) dropScratch(wipe bool) {
	if m.scr == nil {
		return
	}
	if wipe {
		if _, err := m.scr.f.WriteAt(make([]byte, len(m.buf)), 0); err != nil {
			// Not given back: the next draft must not find these bytes
			// past its own either.
			m.d.log.Warn("queue: cannot wipe scratch file", "file", m.scr.path, "err", err)
			m.scr = nil
			return
		}
	}
	m.d.scr.put(m.scr)
	m.scr = nil
}

// spill moves the bytes so far to a file draft of the same ID.
func (m *memDraft) spill() error {
	name := m.id + tmpExt
	if m.copy {
		name = m.id + copyExt
	}
	f, err := m.d.newDraftNamed(m.id, name)
	if err == nil {
		_, err = f.Write(m.buf)
		if err != nil {
			f.Abort()
		}
	}
	if err != nil {
		m.err = err
		return err
	}
	m.dropScratch(true)
	putBuf(m.buf)
	m.buf, m.file = nil, f
	return nil
}

// Path copies the draft to a scratch file, where stages in other
// processes read it, and keeps the copy current as more is written. On
// failure it returns a path that does not exist, and Commit fails.
func (m *memDraft) Path() string {
	if m.file != nil {
		return m.file.Path()
	}
	if m.scr == nil && m.err == nil && !m.ended {
		scr, err := m.d.scr.get()
		if err == nil {
			_, err = scr.f.WriteAt(m.buf, 0)
			if err != nil {
				m.d.scr.put(scr)
			}
		}
		if err != nil {
			m.err = err
		} else {
			m.scr = scr
		}
	}
	if m.scr == nil {
		return m.d.msgPath(m.id) + tmpExt + ".unavailable"
	}
	return m.scr.path
}

func (m *memDraft) Offset() int64 { return 0 }

func (m *memDraft) Size() int64 {
	if m.file != nil {
		return m.file.Size()
	}
	return int64(len(m.buf))
}

// Commit appends the message to the intake log and returns once that is
// durable.
func (m *memDraft) Commit(env *Envelope, prepend []byte) error {
	if m.ended {
		return errDraftEnded
	}
	if m.file != nil {
		m.ended = true
		m.file.OnDurable(m.durable)
		return m.file.Commit(env, prepend)
	}
	if m.err != nil {
		m.Abort()
		return fmt.Errorf("queue: writing %s: %w", m.id, m.err)
	}
	d := m.d
	d.stamp(env, m.id)
	ref, err := d.in.commit(m.id, m.buf, prepend, env)
	m.ended = true
	m.dropScratch(false)
	putBuf(m.buf)
	m.buf = nil
	if err != nil {
		return fmt.Errorf("queue: commit %s: %w", m.id, err)
	}
	if m.durable != nil {
		// In the intake log, durably, and not yet indexed: no worker
		// can take it yet.
		m.durable()
	}
	d.mu.Lock()
	e := d.insert(m.id, env.NextAttempt)
	e.in = ref
	d.mu.Unlock()
	d.signal()
	return nil
}

func (m *memDraft) Abort() error {
	if m.ended {
		return nil
	}
	m.ended = true
	m.dropScratch(true)
	putBuf(m.buf)
	m.buf = nil
	if m.file != nil {
		return m.file.Abort()
	}
	return nil
}
