package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options tune a Dir. The zero value is the durable production setting.
type Options struct {
	Now    func() time.Time // clock for Received, NextAttempt and due checks; time.Now if nil
	Logger *slog.Logger     // slog.Default() if nil
	// NoSync skips every fsync. Only for tests and for benchmarks of the
	// non-durable baseline: a crash of the machine may then lose messages.
	NoSync bool
	// Poll is how often the Dir checks the control file for changes made by
	// other processes (the CLI). Zero means 250ms; negative turns it off.
	Poll time.Duration
	// Intake keeps messages of up to 256 KiB in the intake log (intake.go)
	// until they are delivered, instead of a file each. Only for the
	// process that delivers them: the daemon. Another process's messages
	// would wait there until the next start.
	Intake bool
	// Notify makes commits and lease updates, too, tell other processes
	// (through the control file, watch.go), as Delete, Flush and Move
	// always do. For a process whose commits another must pick up: the
	// queue commands beside a running daemon (a DSN that `queue bounce`
	// queues). The daemon needs no telling of its own commits.
	Notify bool
	// Events makes this Dir log the notes other processes leave about
	// what they did to messages (Note), and clear them: for the daemon.
	Events bool
}

// Dir is a Store in one directory. Safe for concurrent use; several Dirs,
// in this process or others, may share a directory.
type Dir struct {
	path string
	opts Options
	now  func() time.Time
	log  *slog.Logger
	dirf *os.File   // the directory itself, for fsync
	dirs *groupSync // batches fsyncs of dirf
	own  owner      // whom the files it makes are given to (owner.go)
	in   *intake    // nil unless Options.Intake
	scr  *scratchPool

	createMu sync.Mutex // one file creation at a time: see newDraft
	lock     *os.File   // shared flock on .lock while open

	mu  sync.Mutex
	idx map[string]*entry
	due entryHeap // entries not leased by this Dir, soonest first
	seq uint64    // bumped by every change this Dir makes to its index
	// committing holds the IDs this Dir has renamed into place and not yet
	// indexed, so that a rescan does not log them as another process's.
	committing map[string]bool
	closed     bool

	polls, rescans atomic.Int64  // the watcher's work, for tests
	flushes        atomic.Uint64 // see Flushes

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

var _ Store = (*Dir)(nil)

// Open opens (creating if needed) the queue in dir and rebuilds its index.
// When no other process has the directory open, leftovers of a crash are
// cleared first: temporary files are removed, and side files and release
// markers without a message too. Files that do not parse are moved to
// dir/corrupt/.
func Open(dir string, opts Options) (*Dir, error) {
	d := &Dir{path: dir, opts: opts, now: opts.Now, log: opts.Logger,
		idx: map[string]*entry{}, committing: map[string]bool{}, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if err := makeDir(dir, opts.NoSync); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	var err error
	if d.own, err = ownerOf(dir); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	if d.dirf, err = os.Open(dir); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	d.dirs = newGroupSync(func() error { return fsync(d.dirf) })
	// The watcher's starting point is the control file as it was before
	// the scan below: a change another process makes after this read is
	// either found by the scan or seen by the watcher (or both; a rescan
	// too many is harmless). Read later, in the watcher, a change made
	// between the scan and that read would be neither.
	since := d.ctlToken()
	if err := d.lockAndRecover(); err != nil {
		d.dirf.Close()
		return nil, err
	}
	if err := d.ensureCtl(); err != nil {
		d.lock.Close()
		d.dirf.Close()
		return nil, err
	}
	if opts.Intake {
		d.in = newIntake(d)
		d.scr = &scratchPool{d: d, token: d.in.token}
	}
	go d.watch(since)
	return d, nil
}

// lockAndRecover takes the directory lock, clears crash leftovers if this
// is the only user, and loads the index.
func (d *Dir) lockAndRecover() error {
	var err error
	d.lock, err = openOwned(filepath.Join(d.path, lockName), os.O_RDWR|os.O_CREATE, d.own)
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	alone := syscall.Flock(int(d.lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
	// Intake segments are recovered whatever else has the directory open:
	// each is locked by its writer, so a free one has none.
	err = d.recoverIntake()
	var found map[string]time.Time
	if err == nil {
		found, err = d.scan(alone)
	}
	if err == nil {
		// Downgrade (or wait for another process's recovery to finish).
		err = syscall.Flock(int(d.lock.Fd()), syscall.LOCK_SH)
	}
	if err != nil {
		d.lock.Close()
		return fmt.Errorf("queue: %w", err)
	}
	for id, next := range found {
		d.insert(id, next)
	}
	return nil
}

// scan reads every message's due time. With recover set (no other Dir has
// the directory open) it also removes temporary files and orphaned side
// files, and moves unparsable messages aside.
func (d *Dir) scan(recover bool) (map[string]time.Time, error) {
	names, err := d.names()
	if err != nil {
		return nil, err
	}
	found := map[string]time.Time{}
	msgs, envs := map[string]bool{}, map[string]bool{}
	for _, n := range names {
		if id, ok := idOf(n, msgExt); ok {
			msgs[id] = true
		} else if id, ok := idOf(n, envExt); ok {
			envs[id] = true
		}
	}
	for _, n := range names {
		switch {
		case filepath.Ext(n) == tmpExt && (recover || d.stale(n)):
			d.log.Info("queue: removing leftover temporary file", "dir", d.path, "file", n)
			os.Remove(filepath.Join(d.path, n))
		case (filepath.Ext(n) == envExt || filepath.Ext(n) == movedExt) && recover:
			// A side file or release marker whose message is gone: a
			// crash came in the middle of removing it.
			if id, ok := idOf(n, filepath.Ext(n)); ok && !msgs[id] {
				os.Remove(filepath.Join(d.path, n))
			}
		case filepath.Ext(n) == relExt && recover && d.stale(n):
			// Kept: only the source's marker says whether it is the
			// copy of a release (release.go).
			d.log.Warn("queue: a quarantine release was cut short: if the message is still held, release it "+
				"again to finish; if it was deleted from the quarantine, this staged copy may be removed",
				"dir", d.path, "file", n)
		case filepath.Ext(n) == msgExt:
			id, ok := idOf(n, msgExt)
			if !ok {
				continue
			}
			next, err := dueOf(d.path, id, envs[id])
			switch {
			case err == nil:
				found[id] = next
			case errors.Is(err, errCorrupt) && recover:
				d.moveCorrupt(id, n, err)
			case errors.Is(err, ErrNotFound):
			default:
				// Keep it in the schedule: Lease retries and backs off.
				found[id] = d.now()
				d.log.Warn("queue: unreadable message", "dir", d.path, "file", n, "err", err)
			}
		}
	}
	if recover {
		return found, d.syncDir()
	}
	return found, nil
}

// staleAge is the age past which a temporary file is a crash leftover even
// while other processes use the directory: no draft lives that long (the
// DATA timeout is minutes). It covers a daemon restarted while a CLI
// command held the directory, which skipped recovery.
const staleAge = 24 * time.Hour

func (d *Dir) stale(name string) bool {
	st, err := os.Stat(filepath.Join(d.path, name))
	return err == nil && time.Since(st.ModTime()) > staleAge
}

// idOf returns the ID in a file name "ID"+ext.
func idOf(name, ext string) (string, bool) {
	if len(name) != IDLen+len(ext) || name[IDLen:] != ext || !ValidID(name[:IDLen]) {
		return "", false
	}
	return name[:IDLen], true
}

// moveCorrupt moves a message that does not parse (and its side file) to
// corrupt/, where an admin can look at it; it is never deleted silently.
func (d *Dir) moveCorrupt(id, name string, why error) {
	cdir := filepath.Join(d.path, corruptDir)
	err := os.MkdirAll(cdir, 0o700)
	if err == nil {
		err = d.own.path(cdir)
	}
	if err != nil {
		d.log.Error("queue: cannot move corrupt file aside", "file", name, "err", err)
		return
	}
	for _, n := range []string{name, id + envExt} {
		err := os.Rename(filepath.Join(d.path, n), filepath.Join(cdir, n))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			d.log.Error("queue: cannot move corrupt file aside", "file", n, "err", err)
		}
	}
	d.log.Error("queue: message file does not parse; moved to "+corruptDir+"/",
		"queue_id", id, "dir", d.path, "err", why)
}

// names lists the directory, unsorted and without stat calls: cheap even
// for a large queue.
func (d *Dir) names() ([]string, error) {
	f, err := os.Open(d.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func (d *Dir) msgPath(id string) string { return filepath.Join(d.path, id+msgExt) }
func (d *Dir) envPath(id string) string { return filepath.Join(d.path, id+envExt) }

// fsync and fdatasync are the calls that make the queue durable: a test
// replaces them to see what is synced, and when (sync_test.go).
var (
	fsync     = (*os.File).Sync
	fdatasync = sysFdatasync
)

func (d *Dir) syncDir() error {
	if d.opts.NoSync {
		return nil
	}
	return d.dirs.Sync()
}

func (d *Dir) syncFile(f *os.File) error {
	if d.opts.NoSync {
		return nil
	}
	return fsync(f)
}

// Wake is signalled when a message is committed or flushed, and after a
// rescan prompted by another process.
func (d *Dir) Wake() <-chan struct{} { return d.wake }

func (d *Dir) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Close stops watching the directory. Leases still held stay valid until
// released.
func (d *Dir) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	close(d.stop)
	<-d.done
	if d.in != nil {
		live := map[*segment]bool{}
		d.mu.Lock()
		for _, e := range d.idx {
			if e.in != nil {
				live[e.in.seg] = true
			}
		}
		d.mu.Unlock()
		d.in.close(live)
		d.scr.close()
	}
	d.lock.Close() // drops the shared flock
	return d.dirf.Close()
}
