package main

import (
	"errors"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/rules"
)

func init() { extraChecks = append(extraChecks, checkRules) }

// checkRules loads the config's rule files (inline stages:/rules: and the
// include globs) without starting any plugin, and returns every problem,
// each reading "file:line:col: message". Phases are not known without the
// plugins, so the checks that need them wait for `run` and `scan`.
func checkRules(cfg *config.Config) []error {
	_, err := loadRules(cfg)
	if err == nil {
		return nil
	}
	var probs rules.Problems
	if !errors.As(err, &probs) {
		return []error{err}
	}
	out := make([]error, len(probs))
	for i, p := range probs {
		out[i] = p
	}
	return out
}

// loadRules loads the rule set of cfg.
func loadRules(cfg *config.Config) (*rules.Set, error) {
	return rules.Load(cfg.Dir, cfg.Include, cfg.Path, &cfg.Stages, &cfg.Rules)
}
