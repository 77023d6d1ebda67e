//go:build unix && !linux && !darwin

package queue

import (
	"os"

	"golang.org/x/sys/unix"
)

// sysFdatasync is fsync(2) where x/sys has no fdatasync(2) (the BSDs): it
// syncs the times too, a little more work for the same promise.
var sysFdatasync = unix.Fsync

// renameNoReplace is rename(2): these systems have no rename that refuses
// to overwrite (renameat2's RENAME_NOREPLACE), so it is the fallback
// Linux takes on a file system without one. Two processes drawing the same
// message ID is astronomically unlikely.
func renameNoReplace(from, to string) error { return os.Rename(from, to) }
