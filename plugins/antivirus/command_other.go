//go:build !unix

package antivirus

import "os/exec"

// killGroup: without process groups the context kills the command only.
func killGroup(*exec.Cmd) {}
