package antivirus

import "syscall"

// dieWithPlugin has the kernel kill the scanner when the plugin dies: a
// plugin killed mid-scan (SIGKILL, OOM; the host restarts it) left its
// scanner running, a hung one for ever. Pdeathsig follows the thread
// that started the scanner, not the process: Go ends a thread only when
// a goroutine that locked it (runtime.LockOSThread) exits, which nothing
// in this plugin does. The scanner's own children are not reached.
func dieWithPlugin(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }
