package queue

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// sysFdatasync is F_FULLFSYNC, as (*os.File).Sync does on macOS: fsync(2)
// there leaves the data in the drive's cache, and macOS has no
// fdatasync(2). Where the file system refuses it, fsync(2).
func sysFdatasync(fd int) error {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_FULLFSYNC, 0); err == nil {
		return nil
	}
	return unix.Fsync(fd)
}

// renameNoReplace renames without ever overwriting a committed message
// (RENAME_EXCL, macOS's RENAME_NOREPLACE); rename(2) on file systems
// without it.
func renameNoReplace(from, to string) error {
	err := unix.RenameatxNp(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_EXCL)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTSUP) {
		return os.Rename(from, to)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
