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
func countRefusal(dec *pipeline.Decision, code int) {
	m := metrics.Active()
	m.Refused("data", code)
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
func countCommandRefusal(reply string) {
	if len(reply) < 3 {
		return
	}
	if code, err := strconv.Atoi(reply[:3]); err == nil {
		metrics.Active().Refused("other", code)
	}
}
