//go:build unix

package antivirus

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// killGroup runs the command in its own process group and kills the whole
// group when the context ends. In its own group the command is out of
// reach of the host, which kills the plugin's group when the plugin dies:
// dieWithPlugin covers that.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dieWithPlugin(cmd.SysProcAttr)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// reapGroup kills what the command left running in its process group once
// it has exited (a wrapper script's background helper).
func reapGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// sweptOnce is set by the process's first sweepTemp.
var sweptOnce atomic.Bool

// sweepTemp removes the temporary files (tempPrefix) in dir (the system's
// when "") of plugin processes that no longer exist and cannot remove
// them themselves. Only this user's files are removed; those of a live
// process (this one, or another gateway's plugin sharing temp_dir) are
// left, and so is a PID taken since by another process.
//
// Files under this process's own PID are swept too the first time: no
// scan has run yet, so they are a dead plugin's whose PID this one has
// taken, as happens in a container, where each start hands out the same
// small PIDs.
func sweepTemp(dir string) {
	if dir == "" {
		dir = os.TempDir()
	}
	first := !sweptOnce.Swap(true)
	files, _ := filepath.Glob(filepath.Join(dir, tempPrefix+"*-*"))
	for _, f := range files {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(f), tempPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 {
			continue
		}
		if pid == os.Getpid() {
			if !first {
				continue // this process's own scans, maybe in flight
			}
		} else if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			continue // alive (or not ours to ask): leave it
		}
		fi, err := os.Lstat(f)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
			continue
		}
		_ = os.Remove(f)
	}
}
