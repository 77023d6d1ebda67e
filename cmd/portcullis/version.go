package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time: go build -ldflags "-X main.version=1.2.3".
var version = "dev"

func init() {
	register(&command{name: "version", summary: "print version, commit and Go version", run: runVersion})
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", stderr)
	if st := parseFlags(fs, args); st >= 0 {
		return st
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "portcullis version: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	commit, modified := vcsInfo(debug.ReadBuildInfo)
	if modified {
		commit += " (modified)"
	}
	fmt.Fprintf(stdout, "portcullis %s\ncommit %s\n%s\n", version, commit, runtime.Version())
	return exitOK
}

// vcsInfo returns the VCS revision the binary was built from ("unknown"
// when built without VCS stamping, as in `go test` or -buildvcs=false)
// and whether the tree had uncommitted changes.
func vcsInfo(read func() (*debug.BuildInfo, bool)) (string, bool) {
	commit, modified := "unknown", false
	bi, ok := read()
	if !ok {
		return commit, false
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return commit, modified
}
