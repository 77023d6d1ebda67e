//go:build unix

package antivirus

import (
	"os/exec"
	"syscall"
)

// killGroup runs the command in its own process group and kills the whole
// group when the context ends.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
