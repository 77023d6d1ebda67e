package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/rules"
)

func init() { extraChecks = append(extraChecks, checkRules) }

// checkRules loads the config's rule files (inline stages:/rules: and the
// include globs) and returns every problem, each reading
// "file:line:col: message", by file (in the order they were read) and
// position. A plugin that names neither a built-in nor an executable is
// caught here, as `run` would refuse it, and so is a stage's config that
// its plugin would refuse (checkStages). Those are checked for every
// stage whose own entry had no problem, even when other parts of the rule
// set had some. The plugins asked there say at which phases their stages
// run, so the rules are then placed as `run` and `scan` place them, with
// their problems in the same words (rules.Set.CheckPhases); the checks
// that depend on a stage whose plugin could not be asked are skipped, its
// problem being reported already.
func checkRules(cfg *config.Config) []error {
	set, err := rules.LoadPartial(cfg.Dir, cfg.Include, cfg.Path, &cfg.Stages, &cfg.Rules)
	var probs rules.Problems
	if err != nil && !errors.As(err, &probs) {
		return []error{err}
	}
	for i, p := range probs {
		probs[i] = placeInclude(cfg, p)
	}
	var other []error
	stageErrs, phases := checkStages(cfg, set)
	for _, err := range stageErrs {
		var p rules.Problem
		if errors.As(err, &p) {
			probs = append(probs, p)
		} else {
			other = append(other, err)
		}
	}
	probs = append(probs, set.CheckPhases(phases)...)
	set.SortProblems(probs)
	out := make([]error, 0, len(probs)+len(other))
	for _, p := range probs {
		out = append(out, p)
	}
	return append(out, other...)
}

// placeInclude gives a problem with one of the config file's include
// entries (a literal path that does not exist) the entry's line and
// column: rules.Load gets the globs as strings and knows only the file.
func placeInclude(cfg *config.Config, p rules.Problem) rules.Problem {
	if p.Pos.Line != 0 || p.Pos.File != cfg.Path {
		return p
	}
	for i, g := range cfg.Include {
		if strings.HasPrefix(p.Msg, fmt.Sprintf("include %q:", g)) {
			p.Pos.Line, p.Pos.Col = cfg.IncludePos(i)
			break
		}
	}
	return p
}

// loadRules loads the rule set of cfg.
func loadRules(cfg *config.Config) (*rules.Set, error) {
	return rules.Load(cfg.Dir, cfg.Include, cfg.Path, &cfg.Stages, &cfg.Rules)
}

// checkPlugin reports a stage whose plugin is not a built-in and not an
// executable file (relative paths from the config's directory, as the
// plugin host resolves them): `run` could not start it.
func checkPlugin(cfg *config.Config, st *rules.Stage) error {
	if isBuiltin(st.Plugin) {
		return nil
	}
	path := st.Plugin
	if !filepath.IsAbs(path) {
		path = filepath.Join(cfg.Dir, path)
	}
	var why string
	switch fi, err := os.Stat(path); {
	case err != nil:
		why = errText(err)
	case !fi.Mode().IsRegular():
		why = path + ": not a regular file"
	case fi.Mode().Perm()&0o111 == 0:
		why = path + ": not executable"
	default:
		return nil
	}
	msg := fmt.Sprintf("stage %q: plugin %q is not a built-in (%s) nor an executable: %s",
		st.Name, st.Plugin, builtinNames(), why)
	return rules.Problem{Pos: st.PluginPos, Msg: msg}
}

// errText is a file error without Go's "stat " prefix.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}
