//go:build unix && !linux

package antivirus

import "syscall"

// dieWithPlugin: without Linux's Pdeathsig, a scanner outlives a plugin
// killed mid-scan and runs until it ends by itself.
func dieWithPlugin(*syscall.SysProcAttr) {}
