package queue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// The queue commands are often run as root while the daemon runs as its
// own user. A file root makes in the spool (a new message, a DSN, an
// envelope rewritten by flush or bounce, a released message) would be
// root's, mode 0600: the daemon could not read it. So a process whose
// effective UID is 0 gives every file and directory it makes in a Dir the
// owner of the Dir's root directory, before the file is renamed into
// place: no other process ever sees it with the wrong owner, and the
// fsync that follows makes the new owner durable with the contents.

// owner is whom a Dir's new files are given to; the zero value changes
// nothing (the process is not root, or already is the directory's owner).
type owner struct {
	uid, gid int
	set      bool
}

// ownerOf returns the owner files made in dir must have.
func ownerOf(dir string) (owner, error) {
	if os.Geteuid() != 0 {
		return owner{}, nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return owner{}, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return owner{}, fmt.Errorf("queue: no owner for %s", dir)
	}
	o := owner{uid: int(sys.Uid), gid: int(sys.Gid)}
	o.set = o.uid != os.Geteuid() || o.gid != os.Getegid()
	return o, nil
}

// file gives f to o.
func (o owner) file(f *os.File) error {
	if !o.set {
		return nil
	}
	return f.Chown(o.uid, o.gid)
}

// path gives the file or directory at p (not a link's target) to o.
func (o owner) path(p string) error {
	if !o.set {
		return nil
	}
	return os.Lchown(p, o.uid, o.gid)
}

// createFile writes p afresh (truncating a leftover of a crash): write
// fills it, then it is given to the Dir's owner, fsynced and closed. The
// caller renames it into place and fsyncs the directory. On error p is
// removed.
func (d *Dir) createFile(p string, write func(io.Writer) error) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = write(f)
	if err == nil {
		err = d.own.file(f)
	}
	if err == nil {
		err = d.syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p)
	}
	return err
}

// openOwned opens p with flag (which includes os.O_CREATE) and gives it to
// o: for the lock and control files, which are never renamed. A file a
// root process made before (an earlier version) is given back too.
func openOwned(p string, flag int, o owner) (*os.File, error) {
	f, err := os.OpenFile(p, flag, 0o600)
	if err != nil {
		return nil, err
	}
	if err := o.file(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// makeDir creates dir if needed and then fsyncs its parent: a spool
// directory whose own entry is lost in a crash would take every message
// fsynced into it along. Run as root, it gives the directories it creates
// to the owner of the nearest one that was there: the spool's parent
// (/var/spool/portcullis) says whose the spool is.
func makeDir(dir string, noSync bool) error {
	dir = filepath.Clean(dir)
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	var made []string // the directories to create, deepest first
	top := dir
	for {
		if _, err := os.Stat(top); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		made = append(made, top)
		up := filepath.Dir(top)
		if up == top {
			break
		}
		top = up
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	o, err := ownerOf(top)
	if err != nil {
		return err
	}
	for _, p := range made {
		if err := o.path(p); err != nil {
			return err
		}
	}
	if noSync {
		return nil
	}
	for _, p := range made {
		if err := syncPath(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
