// Package rules is the rule-file format of Portcullis: stages (configured
// uses of plugins) and rules (expr-lang/expr conditions that turn stage
// results into actions).
//
// Rule files are YAML and keep their line numbers: every load error is a
// Problem at file:line:col. Expressions are compiled once at load against a
// typed environment (Env), so unknown names, type errors and non-boolean
// conditions are load errors, not surprises on the first message. At run
// time Decide picks the first matching rule of a phase.
//
// At run time a missing value is not an error: a stage that was skipped or
// has not run reads as verdict "none" with empty tags and attrs, and a
// missing attrs or mail.params key reads as "" (nil). An operation that
// cannot work on such a value (int("") of a missing attr, tags[0] of no
// tags) is an error of the rule: Matches yields it and the pipeline answers
// 451 4.3.0 for that phase, never a silent accept. Write
// 'results.x.attrs.n != "" && int(results.x.attrs.n) > 3' to avoid it.
//
// This package imports sdk and libraries only; core/pipeline imports it.
package rules

import (
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// Pos is a position in a rule file; Line and Col are 1-based.
type Pos struct {
	File      string
	Line, Col int
}

// String is "file:line:col", or just the file when the line is unknown
// (an include glob of the config file).
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Problem is one load error at a position.
type Problem struct {
	Pos Pos
	Msg string
}

func (p Problem) Error() string { return p.Pos.String() + ": " + p.Msg }

// Problems is every load error of a rule set; it is an error.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// The actions a rule may take.
const (
	ActionAccept     = "accept"
	ActionReject     = "reject"
	ActionTempfail   = "tempfail"
	ActionDiscard    = "discard"
	ActionQuarantine = "quarantine"
	ActionTag        = "tag"
	ActionAddHeader  = "add_header"
	ActionRedirect   = "redirect"
	ActionLearnSpam  = "learn_spam"
	ActionLearnHam   = "learn_ham"
)

// minPhase is the earliest phase at which an action makes sense: header
// edits, redirection, quarantine and learning need the message.
var minPhase = map[string]sdk.Phase{
	ActionAccept:     sdk.PhaseConnect,
	ActionReject:     sdk.PhaseConnect,
	ActionTempfail:   sdk.PhaseConnect,
	ActionDiscard:    sdk.PhaseData,
	ActionQuarantine: sdk.PhaseData,
	ActionTag:        sdk.PhaseData,
	ActionAddHeader:  sdk.PhaseData,
	ActionRedirect:   sdk.PhaseData,
	ActionLearnSpam:  sdk.PhaseData,
	ActionLearnHam:   sdk.PhaseData,
}

// Terminal reports whether an action ends rule evaluation for the phase.
// tag, add_header, redirect and learn_* record their effect and go on.
func Terminal(action string) bool {
	switch action {
	case ActionTag, ActionAddHeader, ActionRedirect, ActionLearnSpam, ActionLearnHam:
		return false
	}
	return true
}

// On_error values of a stage.
const (
	OnErrorContinue = "continue"
	OnErrorTempfail = "tempfail"
	OnErrorReject   = "reject"
)

// DefaultTagHeader is the field a tag rule without header or
// subject_prefix adds, with the rule's name as its value.
const DefaultTagHeader = "X-Portcullis-Tag"

// DefaultTimeout is a stage's timeout when its entry gives none.
const DefaultTimeout = 5 * time.Second

// Stage is a configured use of a plugin.
type Stage struct {
	Name    string
	Plugin  string
	Timeout time.Duration // default DefaultTimeout
	OnError string        // continue | tempfail | reject; default tempfail
	When    *Program      // nil: always
	Config  map[string]any
	Pos     Pos
	// PluginPos is where the plugin is named (the value of plugin:), for
	// a problem with the plugin itself; Pos when the stage names none.
	PluginPos Pos

	// Phases is set by Bind: the phases the plugin asked for.
	Phases []sdk.Phase
}

// HeaderSpec is a header field added by tag or add_header. Value is a
// template like a reply's text.
type HeaderSpec struct {
	Name  string
	Value *Template
}

// Rule turns results into an action.
type Rule struct {
	Name          string
	When          *Program // nil: always
	Action        string
	Reply         *Reply // reject/tempfail; nil: the default reply
	Header        *HeaderSpec
	SubjectPrefix string
	Recipients    []string
	Phase         sdk.Phase // set at Load, refined by Bind
	Pos           Pos

	fixedPhase sdk.Phase // the rule's own phase: key, "" if none
	phasePos   Pos
}

// Set is every stage and rule of a configuration, in order.
type Set struct {
	Stages []*Stage
	Rules  []*Rule

	fns   *funcs   // precompiled constant arguments of cidr() and regex()
	files []string // the files read, in order (SortProblems)
}

// Stage returns the stage named name.
func (s *Set) Stage(name string) *Stage {
	for _, st := range s.Stages {
		if st.Name == name {
			return st
		}
	}
	return nil
}

// phaseIndex orders phases; an unknown phase sorts first.
func phaseIndex(p sdk.Phase) int {
	for i, q := range sdk.Phases {
		if q == p {
			return i
		}
	}
	return -1
}

func laterPhase(a, b sdk.Phase) sdk.Phase {
	if phaseIndex(b) > phaseIndex(a) {
		return b
	}
	return a
}
