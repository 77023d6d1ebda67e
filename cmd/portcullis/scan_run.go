package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/smtpd"
	"github.com/portcullis-mta/portcullis/sdk"
)

// scanQueueID stands for the queue ID a session would give the message.
const scanQueueID = "SCAN"

// scan runs one message through every phase as a session would: connect,
// helo, mail, rcpt once per recipient (a refused one is dropped, whether
// the relay policy refused it before the rcpt phase or a rule did), data.
// A phase that rejects or tempfails ends the scan with that action. Where the
// session answers for the pipeline (a rule that fails at run time is 451
// 4.3.0; a 4xx before the greeting is 421; a message over
// limits.max_message_bytes is 552 before the data phase), so does scan.
// Every stage call is a dry run (sdk.Request.DryRun): stages change no
// state, and rule actions (learn_*, quarantine, redirect) are reported,
// not performed.
func scan(ctx context.Context, cfg *config.Config, o scanOptions, logger *slog.Logger) (*scanReport, error) {
	body, err := readMessage(o.msgPath)
	if err != nil {
		return nil, err
	}
	pol, err := policy.New(cfg, logger)
	if err != nil {
		return nil, err
	}
	eng, closeFn, err := startPipeline(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	rep := &scanReport{Message: o.msgPath, Stages: map[string]*stageReport{}}
	results := map[string]*sdk.Result{}
	client := policy.Client{IP: o.ip} // offline there is no AUTH
	// DryRun: the stages share their state (greylist records, Bayes
	// tokens) with the gateway; a scan reads it and changes none.
	req := &sdk.Request{SessionID: "scan", DryRun: true, Conn: sdk.Conn{IP: o.ip.String(), Trusted: pol.Trusted(o.ip)}}
	// conn.hostname as a session finds it: host patterns and rules on it
	// judge the same in a scan as in `run`.
	if name, err := smtpd.LookupHost(smtpd.NewResolver(cfg.DNS), o.ip, cfg.DNS.Timeout.D()); err != nil {
		req.Conn.HostnameError = err.Error()
	} else {
		req.Conn.Hostname = name
	}
	if len(cfg.Listeners) > 0 { // the message came in on the first listener
		req.Conn.Listener, req.Conn.TLS = cfg.Listeners[0].Name, cfg.Listeners[0].TLS == "implicit"
	}
	run := func(phase sdk.Phase) (*pipeline.Decision, error) {
		req.Phase = phase
		d, err := eng.Run(ctx, req, results)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s phase: %w", phase, err)
			}
			// The session's answer to a pipeline failure (smtpd runPhase).
			d = &pipeline.Decision{Action: pipeline.Tempfail, Results: results, Reason: err.Error(),
				Reply: &pipeline.Reply{Code: 451, Enhanced: "4.3.0", Text: "Temporary local problem, try again later"}}
		}
		if phase == sdk.PhaseConnect && d.Reply != nil && d.Reply.Code/100 == 4 {
			// Before the greeting only 421 makes sense (RFC 5321 3.1).
			r := *d.Reply
			r.Code, d.Reply = 421, &r
		}
		rep.addPhase(eng, req, d)
		return d, nil
	}
	for _, ph := range []sdk.Phase{sdk.PhaseConnect, sdk.PhaseHelo, sdk.PhaseMail} {
		if ph == sdk.PhaseHelo {
			req.Conn.HELO = o.helo // not known at connect
		}
		if ph == sdk.PhaseMail {
			req.Envelope.From = o.from
			if err := pol.CheckMail(client, o.from); err != nil {
				d := policyDecision(err)
				rep.Phases = append(rep.Phases, phaseReport{Phase: ph, Action: string(d.Action), Reply: replyText(d.Reply)})
				return rep.final(d), nil
			}
		}
		d, err := run(ph)
		if err != nil || refused(d) {
			return rep.final(d), err
		}
	}
	var last *pipeline.Decision
	for _, rcpt := range o.rcpts {
		// A recipient given with --rcpt meets the relay policy as in a
		// session; the default one (no --rcpt) is there to run the stages
		// and rules on the message, whatever relay.domains says.
		if err := pol.CheckRcpt(client, o.from, rcpt); err != nil && !o.anyRcpt {
			last = policyDecision(err)
			rep.Phases = append(rep.Phases, phaseReport{Phase: sdk.PhaseRcpt, Rcpt: rcpt,
				Action: string(last.Action), Reply: replyText(last.Reply)})
			continue
		}
		rcpt = asciiRcpt(rcpt)
		req.Envelope.Rcpt = rcpt
		before := maps.Clone(results)
		d, err := run(sdk.PhaseRcpt)
		if err != nil {
			return nil, err
		}
		if refused(d) {
			// As in a session: a refused recipient's stage results are
			// not what the data phase's rules see.
			clear(results)
			maps.Copy(results, before)
			last = d
			continue
		}
		req.Envelope.Rcpts = append(req.Envelope.Rcpts, rcpt)
	}
	if len(req.Envelope.Rcpts) == 0 {
		return rep.final(last), nil // every recipient refused: no DATA
	}
	if max := cfg.Limits.MaxMessageBytes; max > 0 && int64(len(body)) > max {
		d := &pipeline.Decision{Action: pipeline.Reject, Reason: fmt.Sprintf("message of %d bytes over limits.max_message_bytes", len(body)),
			Reply: &pipeline.Reply{Code: 552, Enhanced: "5.3.4", Text: "Message size exceeds fixed limit"}}
		rep.Phases = append(rep.Phases, phaseReport{Phase: sdk.PhaseData, Action: string(d.Action), Reply: replyText(d.Reply)})
		return rep.final(d), nil
	}
	if max, n := cfg.Limits.MaxHops, smtpd.Hops(body); max > 0 && n >= max {
		e := smtpd.ErrTooManyHops(n)
		d := &pipeline.Decision{Action: pipeline.Reject, Reason: fmt.Sprintf("%d Received fields: limits.max_hops %d", n, max),
			Reply: &pipeline.Reply{Code: e.Code, Enhanced: e.Enhanced, Text: e.Text}}
		rep.Phases = append(rep.Phases, phaseReport{Phase: sdk.PhaseData, Action: string(d.Action), Reply: replyText(d.Reply)})
		return rep.final(d), nil
	}
	req.Envelope.Rcpt, req.QueueID = "", scanQueueID
	received := receivedField(cfg, o, req.Envelope.Rcpts)
	spool, err := writeSpool(received, body)
	if err != nil {
		return nil, err
	}
	defer os.Remove(spool)
	header := append([]sdk.HeaderField{{Name: "Received", Value: unfoldField(received[len("Received: "):])}}, smtpd.HeaderFields(body)...)
	req.Message = sdk.NewFileMessage(header, spool, 0, int64(len(received)+len(body)))
	d, err := run(sdk.PhaseData)
	if err != nil {
		return nil, err
	}
	return rep.final(d), nil
}

// writeSpool writes the message as the spool holds it: our Received field,
// then the message.
func writeSpool(received string, body []byte) (string, error) {
	return writeTemp("portcullis-scan-*.eml", io.MultiReader(strings.NewReader(received), bytes.NewReader(body)))
}

// receivedField is the trace field a session prepends (core/smtpd
// received.go): offline there is no reverse DNS name, no TLS and no AUTH.
func receivedField(cfg *config.Config, o scanOptions, rcpts []string) string {
	helo := strings.Map(func(r rune) rune {
		if r <= ' ' || r == 127 || r == '(' || r == ')' || r == ';' {
			return -1
		}
		return r
	}, o.helo)
	if helo == "" {
		helo = "unknown"
	}
	lit := o.ip.String()
	if o.ip.Is6() {
		lit = "IPv6:" + lit
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s (unknown [%s])\r\n", helo, lit)
	fmt.Fprintf(&b, "\tby %s (Portcullis) with ESMTP id %s", cfg.Hostname, scanQueueID)
	if len(rcpts) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", rcpts[0])
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", time.Now().Format(time.RFC1123Z))
	return b.String()
}

// unfoldField joins folded lines (RFC 5322 2.2.3), as the session does.
func unfoldField(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", ""), "\n", ""))
}

func refused(d *pipeline.Decision) bool {
	return d != nil && (d.Action == pipeline.Reject || d.Action == pipeline.Tempfail)
}
