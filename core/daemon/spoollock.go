package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// daemonLockName is the file in queue.dir that a running daemon holds an
// exclusive flock on, with its PID in it. The queue commands do not take
// it (they work beside a running daemon); a second `portcullis run` on the
// same spool does, and stops with the first one's PID instead of starting
// delivery beside it until its listeners fail.
const daemonLockName = "daemon.pid"

// lockSpool takes the daemon lock of the spool in dir. The lock goes with
// the process (flock), so a daemon that was killed leaves nothing to clean.
func lockSpool(dir string) (*os.File, error) {
	p := filepath.Join(dir, daemonLockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("daemon: spool lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := "unknown"
			if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) != "" {
				pid = strings.TrimSpace(string(b))
			}
			return nil, fmt.Errorf("daemon: spool %s is in use by another portcullis run (pid %s)", dir, pid)
		}
		return nil, fmt.Errorf("daemon: spool lock: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
