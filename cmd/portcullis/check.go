package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/portcullis-mta/portcullis/core/auth"
	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/dkimsign"
	"github.com/portcullis-mta/portcullis/core/policy"
)

// extraChecks run after the config loads cleanly; each returns every
// problem it finds (rule files, for instance), each printed on its own line
// as its Error() text, which should read "file:line:col: message"
// (*config.Error does).
var extraChecks []func(cfg *config.Config) []error

func init() {
	register(&command{
		name:    "check",
		summary: "validate the config and rule files; print file:line:col: message per problem",
		run:     runCheck,
	})
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	flags := newFlagSet("check", stderr)
	path := addConfigFlag(flags)
	if st := parseFlags(flags, args); st >= 0 {
		return st
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "portcullis check: unexpected argument %q (use -c FILE)\n", flags.Arg(0))
		return exitUsage
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		var errs config.Errors
		if !errors.As(err, &errs) {
			// Unreadable file: not a problem at a position, report as such.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			fmt.Fprintf(stdout, "%s: %v\n", displayName(*path), err)
			return exitFailed
		}
		printConfigError(stdout, err)
		return exitFailed
	}
	problems := 0
	for _, check := range append([]func(*config.Config) []error{checkListFiles}, extraChecks...) {
		for _, err := range check(cfg) {
			fmt.Fprintln(stdout, err) // checks format their own positions
			problems++
		}
	}
	if problems > 0 {
		return exitFailed
	}
	fmt.Fprintf(stdout, "ok: %s\n", displayName(*path))
	return exitOK
}

// displayName is how a -c value is shown: the path, or the built-in config.
func displayName(path string) string {
	if path == "" {
		return embeddedConfigName
	}
	return path
}

// checkListFiles reads the users and recipients files and the DKIM keys
// as the daemon will, so that a bad line shows here ("file:line:1:
// message") rather than at start.
func checkListFiles(cfg *config.Config) []error {
	var errs []error
	if cfg.Relay.UsersFile != "" {
		if _, err := auth.LoadUsers(cfg.Relay.UsersFile); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := policy.New(cfg, nil); err != nil {
		errs = append(errs, err)
	}
	// The signing keys, as run loads them: a key that does not parse, is
	// too small or is readable by other users fails here, not at start.
	if err := new(dkimsign.Live).Load(cfg.DKIM); err != nil {
		var ke *dkimsign.KeyError
		line, col := 0, 0
		if errors.As(err, &ke) {
			line, col = cfg.Pos(fmt.Sprintf("dkim.sign[%d].key", ke.Index))
		}
		if line > 0 {
			err = fmt.Errorf("%s:%d:%d: %w", displayName(cfg.Path), line, col, err)
		} else {
			err = fmt.Errorf("%s: %w", displayName(cfg.Path), err)
		}
		errs = append(errs, err)
	}
	return errs
}
