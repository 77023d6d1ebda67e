package queue

import (
	"os"
	"path/filepath"
	"time"
)

// How a Dir learns of changes made by other processes: every Delete, Flush
// and Move bumps the modification time of the control file dir/.changed
// (Open creates it without bumping it, so a CLI that only lists costs the
// daemon nothing). Each open Dir stats that one file every Options.Poll
// (250ms) and rescans the directory only when its mtime moved. So the
// daemon notices a CLI delete, flush or quarantine release within about a
// quarter of a second, and an idle queue of any size costs one stat per
// poll. Commits do not bump it: the daemon is the only committer that
// matters to itself, and a CLI reads the directory afresh on every run.

const defaultPoll = 250 * time.Millisecond

func (d *Dir) ctlPath() string { return filepath.Join(d.path, ctlName) }

// ensureCtl creates the control file if missing, without bumping it: a
// CLI that only lists must not make the daemon rescan.
func (d *Dir) ensureCtl() error {
	f, err := os.OpenFile(d.ctlPath(), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// touch bumps the control file's mtime, creating it if needed. The time is
// set explicitly (not left to the kernel's coarse file clock) and always
// moves forward, so two changes in a row are both seen.
func (d *Dir) touch() error {
	p := d.ctlPath()
	st, err := os.Stat(p)
	if os.IsNotExist(err) {
		f, cerr := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
		if cerr != nil {
			return cerr
		}
		f.Close()
		st, err = os.Stat(p)
	}
	if err != nil {
		return err
	}
	t := time.Now()
	if !t.After(st.ModTime()) {
		t = st.ModTime().Add(time.Microsecond)
	}
	return os.Chtimes(p, t, t)
}

func (d *Dir) ctlMtime() time.Time {
	st, err := os.Stat(d.ctlPath())
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

// watch polls the control file until Close.
func (d *Dir) watch() {
	defer close(d.done)
	poll := d.opts.Poll
	if poll == 0 {
		poll = defaultPoll
	}
	if poll < 0 {
		<-d.stop
		return
	}
	last := d.ctlMtime()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		d.polls.Add(1)
		if m := d.ctlMtime(); !m.Equal(last) {
			last = m
			d.rescans.Add(1)
			if err := d.Rescan(); err != nil {
				d.log.Warn("queue: rescan failed", "dir", d.path, "err", err)
			}
		}
	}
}

// Rescan rereads the directory into the index and signals Wake. The watcher
// calls it when another process changed the queue; callers rarely need to.
func (d *Dir) Rescan() error {
	d.mu.Lock()
	start := d.seq
	d.mu.Unlock()
	found, err := d.scan(false)
	if err != nil {
		return err
	}
	d.merge(found, start)
	d.signal()
	return nil
}
