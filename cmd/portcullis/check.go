package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/portcullis-mta/portcullis/core/auth"
	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/delivery"
	"github.com/portcullis-mta/portcullis/core/dkimsign"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/examples"
)

// extraChecks are the checks of the rule files. They run on the config as
// far as it decoded, even when other keys had problems, but not when
// include:, stages: or rules: had any (the rule set would be a guess: its
// problems would be consequences of the one reported). Each returns every
// problem it finds, each printed on its own line as its Error() text,
// which should read "file:line:col: message" (*config.Error does).
var extraChecks []func(cfg *config.Config) []error

// ruleKeys are the config keys the rule set is read from (extraChecks).
var ruleKeys = []string{"include", "stages", "rules"}

func init() {
	register(&command{
		name:    "check",
		summary: "validate the config and rule files; print file:line:col: message per problem",
		run:     runCheck,
	})
}

// runCheck reports every problem it can find in one run: the config's,
// then those of the files it names (users, recipients, DKIM keys) and of
// the rule files and their stages. A check runs only on what had no
// problem of its own, so that no problem is reported twice: a users_file
// that is not there is the config's problem, not the users check's.
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
	cfg, err := loadConfigPartial(*path)
	var cfgErrs config.Errors
	if err != nil {
		if !errors.As(err, &cfgErrs) {
			// Unreadable file: not a problem at a position, report as such.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			fmt.Fprintf(stdout, "%s: %v\n", displayName(*path), err)
			return exitFailed
		}
		printConfigError(stdout, err)
		if cfg == nil { // not one YAML document: nothing to go on
			return exitFailed
		}
	}
	problems := len(cfgErrs)
	// A problem in the config file itself (an include: in it, inline
	// rules) is named as the config's own problems are, by the path as
	// given: the rule loader names it by its absolute path.
	report := func(errs []error) {
		for _, err := range errs {
			fmt.Fprintln(stdout, asGiven(*path, err.Error())) // checks format their own positions
			problems++
		}
	}
	report(checkListFiles(cfg, cfgErrs))
	report(checkSpools(cfg, cfgErrs))
	if !slices.ContainsFunc(ruleKeys, cfgErrs.About) {
		stageEnvDefaults(cfg, cfgErrs)
		for _, check := range extraChecks {
			report(check(cfg))
		}
	}
	// Not a problem (the daemon starts, and warns): said on stderr, so
	// that stdout stays the list of problems, or ok.
	for _, o := range delivery.OpenPasswordFiles(cfg) {
		fmt.Fprintf(stderr, "portcullis check: warning: routes[%d].auth.password_file %s (next_hop %s) is readable by every user of this machine (mode %#o): chmod 600 it (or 640 with the daemon's group)\n",
			o.Route, o.Path, o.NextHop, o.Mode)
	}
	if problems > 0 {
		return exitFailed
	}
	fmt.Fprintf(stdout, "ok: %s\n", displayName(*path))
	return exitOK
}

// loadConfigPartial is loadConfig for check: the config comes back with
// its problems (config.LoadPartial).
func loadConfigPartial(path string) (*config.Config, error) {
	if path == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		return config.ParsePartialIn(examples.Quickstart, embeddedConfigName, wd)
	}
	return config.LoadPartial(path)
}

// stageEnvDefaults puts back the defaults of the keys that stages are
// given in their Env (hostname, state, dns) where those had problems:
// a stage asked about its config with a bad state.redis, say, would
// refuse it for that, a consequence of a problem already reported.
func stageEnvDefaults(cfg *config.Config, errs config.Errors) {
	def := config.Defaults()
	if errs.About("hostname") {
		cfg.Hostname = def.Hostname
	}
	if errs.About("state") {
		cfg.State = def.State
		cfg.State.Path = filepath.Join(cfg.Dir, cfg.State.Path)
	}
	if errs.About("dns") {
		cfg.DNS = def.DNS
	}
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
// message") rather than at start. A file whose key in the config had a
// problem (errs) is not read: that problem is reported already.
func checkListFiles(cfg *config.Config, errs config.Errors) []error {
	var out []error
	if cfg.Relay.UsersFile != "" && !errs.About("relay.users_file") {
		if _, err := auth.LoadUsers(cfg.Relay.UsersFile); err != nil {
			out = append(out, splitJoined(err)...)
		}
	}
	if cfg.Relay.Recipients != "" && !errs.About("relay.recipients") {
		if _, err := policy.New(cfg, nil); err != nil {
			out = append(out, splitJoined(err)...)
		}
	}
	// The signing keys, as run loads them: a key that does not parse, is
	// too small or is readable by other users fails here, not at start.
	// Each key on its own, so that every bad one is reported.
	for i, k := range cfg.DKIM.Sign {
		entry := fmt.Sprintf("dkim.sign[%d]", i)
		var err error
		switch {
		case errs.About(entry + ".key"):
			continue
		case errs.About(entry):
			// Its other keys had problems (the signer would refuse
			// them again): the key file alone.
			_, err = dkimsign.LoadKey(k.Key)
		default:
			_, err = dkimsign.FromConfig(config.DKIM{Sign: []config.DKIMKey{k}})
			var ke *dkimsign.KeyError
			if errors.As(err, &ke) {
				err = ke.Err
			}
		}
		if err == nil {
			continue
		}
		err = &dkimsign.KeyError{Index: i, Err: err}
		if line, col := cfg.Pos(entry + ".key"); line > 0 {
			err = fmt.Errorf("%s:%d:%d: %w", displayName(cfg.Path), line, col, err)
		} else {
			err = fmt.Errorf("%s: %w", displayName(cfg.Path), err)
		}
		out = append(out, err)
	}
	return out
}

// splitJoined returns the errors joined in err (errors.Join, as the list
// files report one per bad line), or err alone.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
