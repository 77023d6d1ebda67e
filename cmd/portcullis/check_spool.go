package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/portcullis-mta/portcullis/core/config"
)

// checkSpools reports a queue or quarantine directory that `run` could
// not make, as far as that can be told without making anything: run
// makes a missing one (and its parents) at start, and check must not.
// A directory that exists is not judged further: the daemon may run as
// another user than the one checking. A key whose value had a problem
// (errs) is reported already.
func checkSpools(cfg *config.Config, errs config.Errors) []error {
	var out []error
	for _, d := range []struct{ key, dir string }{
		{"queue.dir", cfg.Queue.Dir}, {"queue.quarantine_dir", cfg.Queue.Quarantine},
	} {
		if d.dir == "" || errs.About(d.key) {
			continue
		}
		if why := unmakeable(d.dir); why != "" {
			line, col := cfg.Pos(d.key)
			out = append(out, fmt.Errorf("%s:%d:%d: %s: %s", displayName(cfg.Path), line, col, d.key, why))
		}
	}
	return out
}

// unmakeable says why directory dir could not be made by this user, or
// "" when it exists or nothing is seen against it: the nearest existing
// parent is not a directory, not writable, or on a file system where no
// directory can be made (read-only, or the kernel's /proc and /sys).
func unmakeable(dir string) string {
	st, err := os.Stat(dir)
	switch {
	case err == nil && !st.IsDir():
		return dir + " is not a directory"
	case err == nil:
		return ""
	case !errors.Is(err, fs.ErrNotExist):
		return errText(err) // a parent that is a file (ENOTDIR), one we may not search
	}
	parent := dir
	for {
		up := filepath.Dir(parent)
		if up == parent {
			return ""
		}
		parent = up
		if _, err := os.Stat(parent); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return errText(err)
		}
	}
	if err := unix.Access(parent, unix.W_OK); err != nil {
		return fmt.Sprintf("%s does not exist and cannot be made: %s is not writable by uid %d (%v)", dir, parent, os.Getuid(), err)
	}
	if why := noDirsIn(parent); why != "" {
		return fmt.Sprintf("%s does not exist and cannot be made: %s is on %s", dir, parent, why)
	}
	return ""
}
