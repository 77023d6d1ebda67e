package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/examples"
)

// embeddedConfigName names the built-in quickstart config in messages.
const embeddedConfigName = "(built-in quickstart config)"

// loadConfig loads the config file at path. An empty path means the
// built-in quickstart config (examples.Quickstart), whose relative paths
// (spool, state.db) resolve from the current directory. A failure is a
// config.Errors (one "file:line:col: message" per problem) or a plain
// error when the file cannot be read.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		return config.ParseIn(examples.Quickstart, embeddedConfigName, wd)
	}
	return config.Load(path)
}

// addConfigFlag adds the -c FILE flag to fs and returns where its value lands.
func addConfigFlag(fs *flag.FlagSet) *string {
	return fs.String("c", "", "config `FILE` (default: the built-in quickstart config)")
}

// newFlagSet returns a flag set for command name that reports to stderr and
// returns errors instead of exiting, so that commands run in tests.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("portcullis "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args and returns the exit status for bad usage (2), or
// -1 when the command should go on. -h is not an error: it exits 0.
func parseFlags(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	return -1
}

// printConfigError writes a load failure: one problem a line.
func printConfigError(w io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(w, e.Error())
		}
		return
	}
	fmt.Fprintf(w, "portcullis: %v\n", err)
}

// writeTemp copies r to a new temporary file named after pattern
// (os.CreateTemp) and returns its path; on error nothing is left behind.
func writeTemp(pattern string, r io.Reader) (string, error) {
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
