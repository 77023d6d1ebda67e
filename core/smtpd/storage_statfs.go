//go:build linux || darwin || freebsd || dragonfly

package smtpd

import "syscall"

// freeBytes is the room left on dir's file system for an unprivileged
// process (f_bavail, as Postfix's queue_minfree reads it).
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
