package smtpd

import (
	"strconv"

	"github.com/portcullis-mta/portcullis/core/metrics"
	"github.com/portcullis-mta/portcullis/core/pipeline"
)

// countAccepted records a message answered 250 and what became of it.
func countAccepted(listener string, action pipeline.Action, size int64) {
	m := metrics.Active()
	m.Accepted(listener, size)
	m.Decision(string(action))
}

// countRefusal records a data-phase refusal: the reply, and the decision
// (a pipeline failure, which has none, is a tempfail or reject by class).
func countRefusal(c *guardConn, dec *pipeline.Decision, code int) {
	m := metrics.Active()
	c.countRefusal("data", code)
	switch {
	case dec != nil:
		m.Decision(string(dec.Action))
	case code/100 == 4:
		m.Decision(string(pipeline.Tempfail))
	default:
		m.Decision(string(pipeline.Reject))
	}
}

// countCommandRefusal records a command the guard refused (unknown verb,
// VRFY, no EHLO yet): outside any phase, so "other".
func (c *guardConn) countCommandRefusal(reply string) {
	if len(reply) < 3 {
		return
	}
	if code, err := strconv.Atoi(reply[:3]); err == nil {
		c.countRefusal("other", code)
	}
}

// countRefusal counts a 4xx or 5xx reply about to go out through the guard
// under phase, and marks it counted for afterReply, which counts those that
// no code path did: go-smtp's own answers (a command out of sequence, a
// syntax error), AUTH's 535, and the like.
func (c *guardConn) countRefusal(phase string, code int) {
	c.refusalCounted = true
	metrics.Active().Refused(phase, code)
}

// replyPhase is the phase a reply to verb is counted under when no code
// path counted it: before any command, the connection's.
func replyPhase(verb string) string {
	switch verb {
	case "":
		return "connect"
	case "HELO", "EHLO":
		return "helo"
	case "MAIL":
		return "mail"
	case "RCPT":
		return "rcpt"
	case "DATA":
		return "data"
	}
	return "other"
}
