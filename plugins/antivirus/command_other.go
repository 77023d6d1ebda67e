//go:build !unix

package antivirus

import "os/exec"

// killGroup: without process groups the context kills the command only.
func killGroup(*exec.Cmd) {}

// reapGroup: without process groups, nothing to reap.
func reapGroup(*exec.Cmd) {}

// sweepTemp: without a portable way to ask whether a process exists, the
// files of a dead plugin are left.
func sweepTemp(string) {}
