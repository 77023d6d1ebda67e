package main

import "golang.org/x/sys/unix"

// noDirsIn names the kind of file system dir is on when no directory can
// be made there whoever asks (root's access(2) says yes to /proc), or "".
func noDirsIn(dir string) string {
	var fs unix.Statfs_t
	if unix.Statfs(dir, &fs) != nil {
		return ""
	}
	switch {
	case fs.Flags&unix.ST_RDONLY != 0:
		return "a read-only file system"
	case fs.Type == unix.PROC_SUPER_MAGIC:
		return "the kernel's proc file system"
	case fs.Type == unix.SYSFS_MAGIC:
		return "the kernel's sysfs"
	}
	return ""
}
