package queue

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// How a Dir learns of changes made by other processes: every Delete, Flush
// and Move writes a fresh random token over the 16 bytes of the control
// file dir/.changed (Open creates it without writing, so a CLI that only
// lists costs the daemon nothing). Each open Dir reads those 16 bytes
// every Options.Poll (250ms) and rescans the directory only when they
// changed. So the daemon notices a CLI delete, flush or quarantine release
// within about a quarter of a second, and an idle queue of any size costs
// one small read per poll. A token rather than the file's mtime, because
// timestamps can be coarser than two changes in a row. Commits and lease
// updates write it only with Options.Notify (the queue commands, whose DSNs
// the daemon must pick up): the daemon is the only committer that matters
// to itself, and a CLI reads the directory afresh on every run.
//
// The token's first byte says what changed: tokenFlush for a Flush, which
// also asks whoever delivers to forget the destinations it has marked
// unreachable (see Flushes), as `postqueue -f` makes Postfix's qmgr flush
// its dead queues; tokenChange for anything else.

const (
	defaultPoll = 250 * time.Millisecond
	tokenLen    = 16
	tokenChange = 'C'
	tokenFlush  = 'F'
)

func (d *Dir) ctlPath() string { return filepath.Join(d.path, ctlName) }

// ensureCtl creates the control file if missing, without changing it: a
// CLI that only lists must not make the daemon rescan.
func (d *Dir) ensureCtl() error {
	f, err := openOwned(d.ctlPath(), os.O_WRONLY|os.O_CREATE, d.own)
	if err != nil {
		return err
	}
	return f.Close()
}

// touch tells every open Dir that the directory changed. The token is
// written in place (no truncation), so a reader sees the old token or the
// new one; at worst a torn read costs one extra rescan.
func (d *Dir) touch() error { return d.touchAs(tokenChange) }

// touchAs is touch with the kind of change (tokenChange, tokenFlush).
func (d *Dir) touchAs(kind byte) error {
	var tok [tokenLen]byte
	_, _ = rand.Read(tok[1:]) // never fails (Go 1.24+)
	tok[0] = kind
	f, err := openOwned(d.ctlPath(), os.O_WRONLY|os.O_CREATE, d.own)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(tok[:], 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// notify touches the control file for a change to id when Options.Notify
// asks for it. The change itself is durable already; a failure to tell is
// logged, and the next poll after any other change, or a restart, finds it.
func (d *Dir) notify(id string) {
	if !d.opts.Notify {
		return
	}
	if err := d.touch(); err != nil {
		d.log.Warn("queue: cannot tell other processes of a change", "queue_id", id, "err", err)
	}
}

// ctlToken reads the control file's token ("" if unreadable).
func (d *Dir) ctlToken() string {
	f, err := os.Open(d.ctlPath())
	if err != nil {
		return ""
	}
	defer f.Close()
	var tok [tokenLen]byte
	n, _ := f.ReadAt(tok[:], 0)
	return string(tok[:n])
}

// watchStarting, when set (tests), is called as the watcher starts.
var watchStarting atomic.Pointer[func(*Dir)]

// watch polls the control file until Close, from the token last, read
// before Open scanned the directory.
func (d *Dir) watch(last string) {
	defer close(d.done)
	if f := watchStarting.Load(); f != nil {
		(*f)(d)
	}
	poll := d.opts.Poll
	if poll == 0 {
		poll = defaultPoll
	}
	d.logNotes() // those left while no daemon ran
	if poll < 0 {
		<-d.stop
		return
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		d.polls.Add(1)
		d.ageIntake()
		if tok := d.ctlToken(); tok != last {
			last = tok
			if tok != "" && tok[0] == tokenFlush {
				d.flushes.Add(1)
			}
			d.rescans.Add(1)
			// The notes first: a DSN that `queue bounce` made is logged
			// "queued ... dsn_of=" before the rescan hands it to delivery
			// and its first attempt is logged.
			d.logNotes()
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

// Flushes counts the Flush calls this Dir has made or has seen another
// process make (through the control file). Whoever delivers compares it
// between rounds: a flush asks for a real attempt now, so destinations it
// has marked unreachable are to be tried again. Two changes by other
// processes within one poll may show as the later one only.
func (d *Dir) Flushes() uint64 { return d.flushes.Load() }
