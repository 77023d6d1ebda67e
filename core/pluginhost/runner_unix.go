//go:build unix

package pluginhost

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// ownGroup starts cmd as the leader of a process group of its own, so
// that killGroup reaches what the plugin started and left holding its
// output (a helper in the background): go-plugin reaps a plugin only once
// its stdout and stderr are closed, so such a child would keep a dead
// plugin from being stopped and restarted for as long as it lives.
func ownGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// reapGroup kills what is left in the process group of a plugin that has
// just been reaped (pid its leader's): a helper it started and left
// running when it exited by itself. Right after the reaping, the group ID
// cannot have been reused: the group still has those members, or it is
// gone (ESRCH).
func reapGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }

// killGroup kills the process group that p leads, p first. Only for a
// process not yet reaped: its group ID cannot have been reused.
func killGroup(p *os.Process) error {
	err := p.Kill()
	if gerr := syscall.Kill(-p.Pid, syscall.SIGKILL); gerr != nil && !errors.Is(gerr, syscall.ESRCH) && err == nil {
		err = gerr
	}
	return err
}
