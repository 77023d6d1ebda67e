//go:build !unix

package pluginhost

// sweepSocketDirs is a no-op where processes cannot be asked about by PID.
func sweepSocketDirs(string) {}
