package smtpd

import "golang.org/x/sys/unix"

// freeBytes is the room left on dir's file system for an unprivileged
// process: NetBSD has statvfs(2), counted in fragments, not statfs(2).
func freeBytes(dir string) (uint64, error) {
	var st unix.Statvfs_t
	if err := unix.Statvfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Frsize), nil
}
