package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/pluginhost"
	"github.com/portcullis-mta/portcullis/rules"
)

// reportStartError tells why `run` cannot start. Problems in files (the
// rule files, the stages' configs, the users and recipients files) are
// printed on stderr one a line, "file:line:col: message" as check prints
// them, after a short log line: inside one log line's quoted err they
// read as a single line of literal \n. Any other error is the log line.
func reportStartError(stderr io.Writer, logger *slog.Logger, cfg *config.Config, path string, err error) {
	lines := problemLines(cfg, err)
	if len(lines) == 0 {
		logger.Error("cannot start", "err", err)
		return
	}
	logger.Error("cannot start: problems follow, one a line", "problems", len(lines))
	for _, line := range lines {
		fmt.Fprintln(stderr, asGiven(path, line))
	}
}

// problemLines returns the problems err holds, one a line, or nil when it
// is one error of its own (a port in use, a spool that cannot be made).
func problemLines(cfg *config.Config, err error) []string {
	var lines []string
	var probs rules.Problems
	if errors.As(err, &probs) {
		for _, p := range probs {
			lines = append(lines, placeInclude(cfg, p).Error())
		}
		return lines
	}
	// errors.Join of several (the stages, the lines of a users file),
	// under the daemon's own "daemon: ...: " wrapping.
	for e := err; e != nil; e = errors.Unwrap(e) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, p := range j.Unwrap() {
				lines = append(lines, oneLine(p.Error()))
			}
			return lines
		}
	}
	return nil
}

// asGiven names the config file in line by the path as given with -c, as
// check does: the loaders name it by its absolute path.
func asGiven(path, line string) string {
	abs, _ := filepath.Abs(path)
	if path != "" && abs != path && strings.HasPrefix(line, abs+":") {
		return path + strings.TrimPrefix(line, abs)
	}
	return line
}

// stageProblems turns the plugin host's refusal of a rule set (an error
// per stage, "stage NAME: ...", joined) into problems at the stages'
// positions, as check reports them: a refused config at the stage's
// config: key, any other trouble at the stage. run, a reload's log and
// scan then name the file and line. An error about no stage of set is
// returned as it is.
func stageProblems(set *rules.Set, err error) error {
	parts := splitJoined(err)
	probs := make(rules.Problems, 0, len(parts))
	keys := configKeyFinder{}
	for _, e := range parts {
		st := stageNamed(set, e.Error())
		if st == nil {
			return err
		}
		pos := st.Pos
		if errors.Is(e, pluginhost.ErrConfigRefused) {
			pos = keys.find(pos)
		}
		probs = append(probs, rules.Problem{Pos: pos, Msg: oneLine(e.Error())})
	}
	return probs
}

// stageNamed returns the stage of set that msg ("stage NAME: ...") is
// about, or nil.
func stageNamed(set *rules.Set, msg string) *rules.Stage {
	for _, st := range set.Stages {
		if strings.HasPrefix(msg, "stage "+st.Name+": ") {
			return st
		}
	}
	return nil
}
