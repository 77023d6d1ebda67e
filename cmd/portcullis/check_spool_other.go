//go:build !linux

package main

// noDirsIn is "" where file system types are not told apart: the parent's
// writability (unmakeable) is all that is checked.
func noDirsIn(string) string { return "" }
