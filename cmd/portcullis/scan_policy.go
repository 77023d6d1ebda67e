package main

import (
	"strings"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/smtperr"
)

// The relay policy comes before the pipeline in a session (core/smtpd
// session.go: Policy.CheckMail before the mail phase, Policy.CheckRcpt
// before each rcpt phase), so scan asks the same core/policy code the
// daemon wires in (core/daemon wiring.go), with the same reading of
// relay.domains, relay.networks and relay.recipients.

// policyDecision is a policy refusal as the phase decision scan reports:
// the reply the session sends, reject for a 5xx, tempfail for a 4xx.
func policyDecision(err error) *pipeline.Decision {
	e := smtperr.As(err)
	d := &pipeline.Decision{Action: pipeline.Reject, Reason: "relay policy",
		Reply: &pipeline.Reply{Code: e.Code, Enhanced: e.Enhanced, Text: e.Text}}
	if e.Temporary() {
		d.Action = pipeline.Tempfail
	}
	if e.Cause != nil {
		d.Reason += ": " + e.Cause.Error()
	}
	return d
}

// asciiRcpt is rcpt with a non-ASCII domain in the A-label form the policy
// judged it in, as the session hands it to rules and the queue (core/smtpd
// session.go asciiDomain).
func asciiRcpt(rcpt string) string {
	i := strings.LastIndexByte(rcpt, '@')
	if i < 0 || isASCIIString(rcpt[i+1:]) {
		return rcpt
	}
	a, err := policy.ParsePath(rcpt)
	if err != nil {
		return rcpt // the policy refuses such a domain before this
	}
	return rcpt[:i+1] + a.Domain
}

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
