//go:build !linux && !darwin && !freebsd && !dragonfly && !openbsd && !netbsd

package smtpd

import "errors"

// freeBytes: without statfs(2) here the room is not known, and spaceFor
// does not stop mail (writing the message will tell).
func freeBytes(string) (uint64, error) { return 0, errors.ErrUnsupported }
