package queue

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// sysFdatasync syncs a file's data and the metadata needed to read it back
// (its size), not its times: the intake log's segments are synced once a
// commit group, and fdatasync(2) spares them a journal write each time.
var sysFdatasync = unix.Fdatasync

// renameNoReplace renames without ever overwriting a committed message (two
// processes drawing the same ID is astronomically unlikely, but a silent
// overwrite would lose mail). Falls back to rename(2) on file systems
// without RENAME_NOREPLACE.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return os.Rename(from, to)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
