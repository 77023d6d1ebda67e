package smtpd

import (
	"context"
	"maps"
	"strconv"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/smtperr"
	"github.com/portcullis-mta/portcullis/rules"
	"github.com/portcullis-mta/portcullis/sdk"
)

// sdkConn is what stages see of the connection.
func (c *guardConn) sdkConn(helo string, authed bool, user string) sdk.Conn {
	return sdk.Conn{
		IP:            c.info.ip.String(),
		Port:          c.info.port,
		Hostname:      c.info.hostname,
		HostnameError: c.info.hostnameErr,
		HELO:          helo,
		TLS:           c.tlsState != nil,
		Listener:      c.info.listener.Name,
		Trusted:       c.srv.d.Policy.Trusted(c.info.ip),
		Authenticated: authed,
		User:          user,
	}
}

// phaseTimeout bounds one phase of the pipeline; stages have their own
// shorter timeouts, this only keeps a stuck runner from holding a session.
func (c *guardConn) phaseContext() (context.Context, context.CancelFunc) {
	d := c.srv.cfg.Limits.CommandTimeout.D()
	if d <= 0 {
		d = 5 * time.Minute
	}
	return context.WithTimeout(context.Background(), d)
}

// runPhase asks the pipeline about one phase. It returns nil to go on, or
// the reply to send; an internal failure is 451 4.3.0 (never a silent accept).
func (c *guardConn) runPhase(req *sdk.Request, results map[string]*sdk.Result, def5, def4 *smtperr.Error) (*pipeline.Decision, *smtperr.Error) {
	p := c.srv.d.Pipeline
	if p == nil || !p.Wants(req.Phase) {
		return nil, nil
	}
	req.SessionID = c.info.id
	ctx, cancel := c.phaseContext()
	defer cancel()
	ctx = pipeline.WithFacts(ctx, rules.Facts{Pregreet: c.pregreet, MailParams: c.mailParams})
	_, utf8 := c.mailParams["SMTPUTF8"]
	form := func(d *pipeline.Decision) *smtperr.Error { return phaseReply(req.Phase, d, def5, def4, utf8) }
	// The decision line shows the reply as it is sent.
	ctx = pipeline.WithReplyForm(ctx, func(d *pipeline.Decision) string {
		if e := form(d); e != nil {
			return replyLine(e)
		}
		return ""
	})
	d, err := p.Run(ctx, req, results)
	if err != nil {
		e := smtperr.Wrap(err, 451, "4.3.0", "Temporary local problem, try again later")
		attrs := []any{"phase", req.Phase, "err", err}
		if req.QueueID != "" {
			attrs = append(attrs, "queue_id", req.QueueID)
		}
		c.log.Warn("pipeline failed", attrs...)
		return nil, e
	}
	return d, form(d)
}

// phaseReply is the reply the session sends for decision d in phase: nil
// to go on, else the rule's reply (decisionError) or the default, def5 or
// def4; before the greeting a tempfail is 421 (RFC 5321 3.1: only 421 or
// 554 make sense there). utf8: the client asked for SMTPUTF8.
func phaseReply(phase sdk.Phase, d *pipeline.Decision, def5, def4 *smtperr.Error, utf8 bool) *smtperr.Error {
	var e *smtperr.Error
	switch d.Action {
	case pipeline.Reject:
		e = decisionError(d, def5, utf8)
	case pipeline.Tempfail:
		e = decisionError(d, def4, utf8)
	default:
		return nil
	}
	if phase == sdk.PhaseConnect && e.Code/100 == 4 {
		e = smtperr.New(421, e.Enhanced, e.Text) // as connectPhase does for a failure
	}
	return e
}

// connectPhase runs the connect-phase pipeline before the greeting. The
// decision is nil when no rule decided (or nothing runs at connect).
func connectPhase(c *guardConn) (*pipeline.Decision, *smtperr.Error) {
	c.connResult = map[string]*sdk.Result{}
	req := &sdk.Request{Phase: sdk.PhaseConnect, Conn: c.sdkConn("", false, "")}
	d, e := c.runPhase(req, c.connResult, errConnReject, errConnTempfail)
	if e != nil && e.Code/100 == 4 {
		// A pipeline failure: a decision's tempfail is 421 already
		// (phaseReply). Before the greeting only 421 (or 554) makes sense
		// (RFC 5321 3.1).
		e = smtperr.New(421, e.Enhanced, e.Text)
	}
	return d, e
}

// copyResults starts a transaction's results from the connection's.
func copyResults(m map[string]*sdk.Result) map[string]*sdk.Result {
	out := make(map[string]*sdk.Result, len(m))
	maps.Copy(out, m)
	return out
}

// mailParams is MAIL FROM's parameters for rules (mail.params), upper-case
// keys as RFC 5321 4.1.2 esmtp-keywords.
func mailParams(o *smtp.MailOptions) map[string]string {
	m := map[string]string{}
	if o.Size > 0 {
		m["SIZE"] = strconv.FormatInt(o.Size, 10)
	}
	if o.Body != "" {
		m["BODY"] = string(o.Body)
	}
	if o.UTF8 {
		m["SMTPUTF8"] = ""
	}
	if o.Return != "" {
		m["RET"] = string(o.Return)
	}
	if o.EnvelopeID != "" {
		m["ENVID"] = o.EnvelopeID
	}
	if o.Auth != nil {
		m["AUTH"] = "<" + *o.Auth + ">"
	}
	return m
}
