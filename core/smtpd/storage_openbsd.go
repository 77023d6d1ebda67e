package smtpd

import "golang.org/x/sys/unix"

// freeBytes is the room left on dir's file system for an unprivileged
// process: OpenBSD's statfs(2) names its fields f_bavail and f_bsize.
func freeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.F_bavail) * uint64(st.F_bsize), nil
}
