package queue

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Move is how a message leaves the quarantine (`portcullis quarantine
// release`). The copy in the queue and the original in the quarantine
// cannot change in one step (the two directories may even be on different
// file systems), and the daemon may deliver and remove the copy the moment
// it is visible. So the queue cannot tell a release that never committed
// from one that did and was delivered since: a release retried on that
// test delivers the message twice. The decision is kept in the source
// instead, and each step is durable before the next begins:
//
//  1. stage: the copy is written to DST/ID.rel, fsynced, and DST fsynced.
//     A .rel file is not a message: no Dir lists, leases or removes it.
//  2. mark: SRC/ID.moved is created, fsynced, and SRC fsynced. This is the
//     commit point: from here on the message has been released, and
//     DST/ID.rel is its copy, or was until step 3 renamed it.
//  3. commit: DST/ID.rel is renamed to DST/ID.msg, and DST fsynced.
//  4. the original goes: ID.msg, ID.env, then the marker.
//
// A Move that finds the original without a marker starts over (a crash came
// before step 2: no copy was ever a message; a stale .rel is overwritten).
// One that finds the marker goes on from step 3: if ID.rel is there it is
// renamed; if it is not, the rename happened and the copy may be delivered
// already, so only the original is removed. Either way the message is
// queued once, whatever step a crash cut short.
//
// Recovery of the source removes a marker whose message is gone (a crash
// inside step 4) and keeps one whose message is still there: releasing it
// again finishes the job (the source does not know the destination).
// Recovery of the destination never removes a .rel: only the source's
// marker says whether it is a released message or a leftover.

// moveHook, when set (by the crash tests), is called after each durable
// step of a release with the step's name.
var moveHook func(step string)

func moveStep(step string) {
	if moveHook != nil {
		moveHook(step)
	}
}

// Move takes id out of this store and commits it into dst, due now, with
// env's state (nil: as stored). Into a *Dir it keeps its ID and is
// released at most once (see above); a Move cut short is finished by
// calling it again. Another Store gives it a new ID, and the copy is
// committed before the original is removed: a crash in between leaves the
// message in both.
func (d *Dir) Move(id string, dst Store, env *Envelope) error {
	if err := d.spillEntry(id); err != nil {
		return err
	}
	f, lay, cur, err := d.lockAndLoad(id)
	if err != nil {
		return err
	}
	defer f.Close()
	if env == nil {
		env = cur
	}
	cp := *env
	if dd, ok := dst.(*Dir); ok {
		err = d.release(dd, id, lay.reader(f), &cp)
	} else {
		err = copyInto(dst, lay.reader(f), &cp)
	}
	if err != nil {
		return err
	}
	if err := d.remove(id); err != nil {
		return err
	}
	moveStep("removed")
	return d.forget(id)
}

// release runs steps 1 to 3 into dst, or what is left of them after a
// crash (the caller holds the original's lock).
func (d *Dir) release(dst *Dir, id string, r io.Reader, env *Envelope) error {
	_, err := os.Lstat(d.movedPath(id))
	switch {
	case err == nil:
		// Decided before a crash: finish it.
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("queue: release %s: %w", id, err)
	case dst.has(id):
		// A copy without a marker: left by a version of this code that
		// made none. Finish by removing the original.
		return nil
	default:
		if err := dst.stage(id, r, env); err != nil {
			return fmt.Errorf("queue: release %s: %w", id, err)
		}
		moveStep("staged")
		if err := d.mark(id, dst.path); err != nil {
			return fmt.Errorf("queue: release %s: %w", id, err)
		}
		moveStep("marked")
	}
	if err := dst.commitStaged(id); err != nil {
		return fmt.Errorf("queue: release %s: %w", id, err)
	}
	moveStep("committed")
	return nil
}

// has reports whether id is a message in d (in its file or its log).
func (d *Dir) has(id string) bool {
	_, err := d.Get(id)
	return err == nil
}

func (d *Dir) relPath(id string) string   { return filepath.Join(d.path, id+relExt) }
func (d *Dir) movedPath(id string) string { return filepath.Join(d.path, id+movedExt) }

// stage is step 1: r's bytes and env, due now, as a whole .msg image in
// ID.rel.
func (d *Dir) stage(id string, r io.Reader, env *Envelope) error {
	// A side file orphaned by a crash must not override env once the copy
	// is a message. No message id is here, so nothing makes a new one.
	if err := os.Remove(d.envPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	env.NextAttempt = d.now()
	d.stamp(env, id)
	tmp := d.relPath(id) + tmpExt
	err := d.createFile(tmp, func(f io.Writer) error {
		w := bufio.NewWriterSize(f, 64<<10)
		n, err := io.Copy(w, r)
		if err == nil {
			err = appendTrailer(w, n, nil, env)
		}
		if err == nil {
			err = w.Flush()
		}
		return err
	})
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, d.relPath(id)); err != nil {
		os.Remove(tmp)
		return err
	}
	return d.syncDir()
}

// mark is step 2: the marker, which names the destination for an admin
// who finds it.
func (d *Dir) mark(id, dst string) error {
	err := d.createFile(d.movedPath(id), func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "released to %s\n", dst)
		return err
	})
	if err != nil {
		return err
	}
	return d.syncDir()
}

// commitStaged is step 3. No ID.rel means an earlier call renamed it: the
// copy is (or was, if delivered since) a message already.
func (d *Dir) commitStaged(id string) error {
	err := renameNoReplace(d.relPath(id), d.msgPath(id))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case errors.Is(err, os.ErrExist):
		// An ID.msg of the same ID cannot come from a release that
		// staged this copy; keep the message, drop the copy.
		d.log.Warn("queue: released message already queued; staged copy dropped", "queue_id", id, "dir", d.path)
		if err := os.Remove(d.relPath(id)); err != nil {
			return err
		}
		return d.syncDir()
	case err != nil:
		return err
	}
	if err := d.syncDir(); err != nil {
		return err
	}
	d.mu.Lock()
	d.insert(id, d.now())
	d.mu.Unlock()
	d.signal()
	return d.touch()
}

// copyInto commits r's bytes with env into dst, another Store, due now.
func copyInto(dst Store, r io.Reader, env *Envelope) error {
	dr, err := dst.NewDraft()
	if err != nil {
		return err
	}
	env.NextAttempt = time.Time{} // Commit: due now
	if _, err := io.Copy(dr, r); err != nil {
		dr.Abort()
		return err
	}
	return dr.Commit(env, nil)
}
