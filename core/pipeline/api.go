// Package pipeline runs the configured stages of each SMTP phase (in
// parallel within a phase, each with its timeout and on_error) and applies
// the rules to their results, giving the SMTP session a Decision.
package pipeline

import (
	"context"

	"github.com/portcullis-mta/portcullis/sdk"
)

// Action is what the rules decided.
type Action string

// The actions. Continue means no rule decided: go on to the next phase
// (after the data phase, Continue means accept).
const (
	Continue   Action = "continue"
	Accept     Action = "accept"
	Reject     Action = "reject"
	Tempfail   Action = "tempfail"
	Discard    Action = "discard"
	Quarantine Action = "quarantine"
)

// Reply is an SMTP reply chosen by a rule.
type Reply struct {
	Code     int    // 4xx or 5xx
	Enhanced string // "5.7.1"
	Text     string
}

// Decision is the outcome of one phase.
type Decision struct {
	Action Action
	Reply  *Reply // reject/tempfail: the rule's reply; nil means the session's default
	Rule   string // the rule that decided ("" if none)
	Reason string // for logs and the quarantine

	// Data phase, applied by the session before the message is committed.
	Headers       []sdk.HeaderEdit // stage edits, then tag/add_header edits
	SubjectPrefix string           // tag: prefix for Subject
	Redirect      []string         // redirect: replace the recipients

	Results map[string]*sdk.Result // every stage result so far, by stage name
	Tags    []string

	// applied names the rules that matched without ending the phase (tag,
	// add_header, redirect, learn_*) as "action:rule", for the decision's
	// log line: without it a redirect or an added header is untraceable.
	applied []string
	// prefixes are the subject prefixes in SubjectPrefix, trimmed, so
	// that a rule's is added once (addPrefix).
	prefixes []string
}

// Runner is what an SMTP session asks at every phase.
type Runner interface {
	// Wants reports whether any stage or rule is configured for the phase,
	// so that a session skips phases with nothing to do.
	Wants(phase sdk.Phase) bool
	// Run runs the phase's stages and rules. results carries earlier
	// phases' results of this transaction and is updated. An error means
	// the pipeline itself failed: the session answers 451 4.3.0.
	Run(ctx context.Context, req *sdk.Request, results map[string]*sdk.Result) (*Decision, error)
}
