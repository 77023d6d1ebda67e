package smtpd

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/queue"
	"github.com/portcullis-mta/portcullis/core/smtperr"
	"github.com/portcullis-mta/portcullis/sdk"
)

// Data spools the message, runs the data phase and commits what is
// accepted. The 250 go-smtp sends when Data returns nil comes only after
// Commit returned, so the message is on disk (RFC 5321 4.1.1.4: "the
// receiver MUST NOT send OK until it has taken responsibility").
func (s *session) Data(r io.Reader) error {
	if s.gc.earlyData {
		s.gc.earlyData = false
		return s.refuse("data", errEarlyData)
	}
	d, err := s.gc.srv.d.Queue.NewDraft()
	if err != nil {
		return s.refuse("data", storageError(err))
	}
	defer func() { _ = d.Abort() }()
	log := s.log.With("queue_id", d.ID())
	received := s.receivedHeader(d.ID())
	if _, err := io.WriteString(d, received); err != nil {
		e := storageError(err)
		s.gc.countRefusal("data", e.Code)
		return toSMTP(log, e)
	}
	// The header is captured and parsed only for a data phase that will
	// use it: a gateway without content stages skips the work.
	var hc *headerCapture
	var w io.Writer = d
	if p := s.gc.srv.d.Pipeline; p != nil && p.Wants(sdk.PhaseData) {
		hc = &headerCapture{}
		w = io.MultiWriter(d, hc)
	}
	lc := &lineChecker{w: w, limit: s.gc.srv.cfg.Limits.MaxMessageBytes}
	// The body comes straight from the guard (see bodyReader); r, go-smtp's
	// reader, then finds the end of data at once.
	body := newBodyReader(s.gc)
	defer body.release()
	_, err = io.Copy(lc, body)
	if err == nil {
		err = lc.Close()
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, errForcedShutdown) {
		// Refused (too big, bare CR/LF, a spool error), and the session
		// goes on: the rest of the body is read and dropped so that the
		// next command is where the client sends it. A timeout, or the
		// end of the shutdown grace, ends the session instead (dataError).
		body.drain()
	}
	if err == nil {
		err = s.gc.dataCheck.err
	}
	if err != nil {
		return s.dataError(err)
	}
	s.msgID = lc.hops.messageID()
	s.hasMsgID, s.hasDate = lc.hops.msgID != nil, lc.hops.date
	if max := s.gc.srv.cfg.Limits.MaxHops; max > 0 && lc.hops.n >= max {
		// With ours it would be over max_hops (RFC 5321 6.3).
		return s.refuse("data", ErrTooManyHops(lc.hops.n))
	}
	size := lc.n + int64(len(received))
	var dec *pipeline.Decision
	if hc != nil {
		header := append([]sdk.HeaderField{{Name: "Received", Value: unfold(received[len("Received: "):])}}, hc.fields()...)
		msg := sdk.NewFileMessage(header, d.Path(), d.Offset(), size)
		req := &sdk.Request{Phase: sdk.PhaseData, QueueID: d.ID(), Conn: s.conn(),
			Envelope: sdk.Envelope{From: s.from, Rcpts: s.rcptAddrs()}, Message: msg}
		var e *smtperr.Error
		if dec, e = s.gc.runPhase(req, s.results, errRejectDefault, errTempDefault); e != nil {
			log.Info("refused", append([]any{"phase", "data", "reply", replyLine(e), "code", e.Code, "from", policy.WirePath(s.from)}, decisionLog(dec)...)...)
			countRefusal(s.gc, dec, e.Code)
			if dec != nil && dec.Action == pipeline.Reject {
				// A learn_spam rule before the reject (a spam trap that
				// learns, then refuses) was dropped with the message.
				// A tempfail learns nothing: the message comes back.
				s.prepareLearn(log, d, dec, size).start(log, d.ID())
			}
			return toSMTP(log, e)
		}
	}
	return s.finish(log, d, s.withHeld(dec), size, len(received))
}

// withHeld applies a discard or quarantine decided before DATA unless the
// data phase decided otherwise; the data phase's edits are kept.
func (s *session) withHeld(dec *pipeline.Decision) *pipeline.Decision {
	if s.held == nil || (dec != nil && dec.Action != pipeline.Continue && dec.Action != pipeline.Accept) {
		return dec
	}
	held := *s.held
	if dec != nil {
		held.Headers, held.SubjectPrefix, held.Redirect = dec.Headers, dec.SubjectPrefix, dec.Redirect
		held.Tags = slices.Concat(held.Tags, dec.Tags) // learn_* of the data phase too
	}
	return &held
}

// dataError maps a failure while reading the message to its reply.
func (s *session) dataError(err error) error {
	switch {
	case errors.Is(err, errBareBytes):
		return s.refuse("data", errBareLine)
	case errors.Is(err, errOversize):
		return s.refuse("data", errTooBig)
	case errors.Is(err, errForcedShutdown):
		s.gc.closing = true
		return s.refuse("data", errShutdownData)
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.gc.closing = true
		return s.refuse("data", errDataTimeout)
	case clientReadError(err):
		// The client reset the connection mid-message: nothing was
		// refused and no one will read a reply. The guard takes
		// go-smtp's read-error reply for what it is (connectionLost): a
		// "connection lost" line, no refusal logged or counted, where
		// this was a 451 and a WARN "internal error".
		s.gc.closing = true
		s.gc.readErr = err
		return errConnLost
	}
	return s.refuse("data", storageError(err))
}

// errConnLost is go-smtp's reply to a failed read, which the guard drops.
var errConnLost = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 0}, Message: "Connection error, sorry"}

// clientReadError reports an error from reading the client's connection
// (a reset, a broken TLS record), not from our spool: io.Copy returns
// either.
func clientReadError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read"
}

// redirected is the recipients of a redirect to addrs. They keep the
// sender's DSN requests, as an MTA that aliases or forwards must (RFC 3461
// 6.2): the NOTIFY the original recipients share (a sender who asked
// NOTIFY=NEVER gets no failure report, which would also name the redirect
// address), and, from a single original recipient, its ORCPT, or its
// address as one, so that a report names whom the sender wrote to.
func redirected(orig []*queue.Recipient, addrs []string) []*queue.Recipient {
	var notify []string
	orcpt := ""
	if len(orig) > 0 {
		notify = orig[0].Notify
		for _, r := range orig[1:] {
			if !slices.Equal(r.Notify, notify) {
				notify = nil // no common request: the default (failures and delays)
				break
			}
		}
	}
	if len(orig) == 1 {
		orcpt = orig[0].ORCPT
		if orcpt == "" {
			typ := "rfc822"
			if !isASCII(orig[0].Addr) {
				typ = "utf-8" // RFC 6533 3
			}
			orcpt = typ + ";" + orig[0].Addr
		}
	}
	out := make([]*queue.Recipient, len(addrs))
	for i, a := range addrs {
		out[i] = &queue.Recipient{Addr: a, Status: queue.RcptPending, Notify: slices.Clone(notify), ORCPT: orcpt}
	}
	return out
}

// finish applies the data-phase decision and commits.
func (s *session) finish(log *slog.Logger, d queue.Draft, dec *pipeline.Decision, size int64, recvLen int) error {
	env := s.envelope()
	store := s.gc.srv.d.Queue
	action := pipeline.Accept
	if dec != nil {
		action = dec.Action
		if len(dec.Redirect) > 0 {
			// The original recipients on the line too (Postfix's orig_to=):
			// a grep for the queue ID shows whom the mail was meant for.
			orig := make([]string, len(env.Rcpts))
			for i, r := range env.Rcpts {
				orig[i] = r.Addr
			}
			env.Rcpts = redirected(env.Rcpts, dec.Redirect)
			// A redirect to a local part beyond ASCII needs SMTPUTF8 on
			// the way out (RFC 6531 3.2), whatever the client sent:
			// delivery then refuses a next hop without it, rather than
			// putting raw UTF-8 into a RCPT TO that did not announce it.
			if slices.ContainsFunc(dec.Redirect, func(a string) bool { return !isASCII(a) }) {
				env.SMTPUTF8 = true
			}
			log.Info("redirected", "rcpts", strings.Join(dec.Redirect, ","), "orig_rcpts", strings.Join(orig, ","))
		}
	}
	switch action {
	case pipeline.Discard:
		// Answered 250 with its ID like a queued message, so its last
		// line says who sent it, as the queued line does.
		log.Info("discarded", append([]any{"client", env.Client.IP, "from", policy.WirePath(env.From), "message_id", s.msgID, "size", size,
			"nrcpt", len(env.Rcpts)}, decisionLog(dec)...)...)
		countAccepted(s.gc.info.listener.Name, action, size)
		// A learn_spam rule before the discard is kept: the job reads the
		// draft through its own descriptor (or copy) after Data aborts it.
		s.prepareLearn(log, d, dec, size).start(log, d.ID())
		return accepted(d.ID())
	case pipeline.Quarantine:
		store = s.gc.srv.d.Quarantine
		if store == nil {
			// Never deliver what a rule wanted held.
			s.gc.countRefusal("data", 451)
			return toSMTP(log, smtperr.Wrap(errors.New("no quarantine store"), 451, "4.3.0", "Temporary local problem, try again later"))
		}
		results := dec.Results
		if len(results) == 0 {
			results = s.results
		}
		env.Reason, env.Tags, env.Results = dec.Reason, dec.Tags, resultSummary(results)
	}
	job := s.prepareLearn(log, d, dec, size)
	what := "queued"
	if action == pipeline.Quarantine {
		what = "quarantined"
	}
	logged := false
	// The client and the sender on the line with the queue ID, as
	// Postfix's smtpd and qmgr log "QID: client=..." and "QID: from=<...>":
	// one grep for the ID shows who sent it, from where. Logged once the
	// message is durable but before delivery can take it (commit), so
	// that it comes before the message's delivery and removed lines.
	logQueued := func(id string) {
		if id != d.ID() {
			log = s.log.With("queue_id", id)
		}
		log.Info(what, append([]any{"client", env.Client.IP, "from", policy.WirePath(env.From), "message_id", s.msgID, "size", size,
			"nrcpt", len(env.Rcpts)}, decisionLog(dec)...)...)
		logged = true
	}
	id, err := s.commit(log, store, d, env, dec, recvLen, logQueued)
	if err != nil {
		job.cancel()
		e := storageError(err)
		s.gc.countRefusal("data", e.Code)
		return toSMTP(log, e)
	}
	if !logged { // a store that cannot say when its message is durable
		logQueued(id)
	}
	countAccepted(s.gc.info.listener.Name, action, size)
	job.start(log, id)
	return accepted(id)
}

// acceptedText follows the queue ID in the 250 reply after Commit.
const acceptedText = "Message accepted for delivery"

// accepted is the 250 reply after Commit (CONTRACT.md).
func accepted(id string) error {
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0},
		Message: id + " " + acceptedText}
}

// envelope builds the queue envelope of the transaction.
func (s *session) envelope() *queue.Envelope {
	gc, o := s.gc, s.mailOpts
	now := gc.srv.d.Now()
	rcpts := make([]*queue.Recipient, len(s.rcpts))
	for i, r := range s.rcpts {
		c := *r
		rcpts[i] = &c
	}
	return &queue.Envelope{
		From: s.from, Rcpts: rcpts, BodyType: string(o.Body), SMTPUTF8: o.UTF8,
		DSNRet: string(o.Return), DSNEnvID: o.EnvelopeID,
		Client: queue.Client{
			IP: gc.info.ip.String(), Port: gc.info.port, HELO: s.sc.Hostname(),
			Hostname: gc.info.hostname, TLS: gc.tlsState != nil, Listener: gc.info.listener.Name,
			Trusted: gc.srv.d.Policy.Trusted(gc.info.ip), Authenticated: s.authed, User: s.user,
		},
		Received: now, NextAttempt: now,
	}
}

// resultSummary flattens stage results for the quarantine envelope.
func resultSummary(m map[string]*sdk.Result) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for name, r := range m {
		if r == nil {
			continue
		}
		var b strings.Builder
		b.WriteString(string(r.Verdict))
		if r.Score != 0 {
			fmt.Fprintf(&b, " score=%g", r.Score)
		}
		if len(r.Tags) > 0 {
			b.WriteString(" tags=" + strings.Join(r.Tags, ","))
		}
		for _, k := range slices.Sorted(maps.Keys(r.Attrs)) {
			fmt.Fprintf(&b, " %s=%q", k, prefix(r.Attrs[k], maxSummaryAttr))
		}
		if r.Reason != "" {
			b.WriteString(": " + r.Reason)
		}
		out[name] = cutUTF8(b.String(), maxSummary)
	}
	return out
}

// cutUTF8 is s cut to at most n bytes at a character boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// A quarantined message keeps each stage's verdict, score, tags,
// attributes and reason for `quarantine show`, within these bounds.
const (
	maxSummaryAttr = 100
	maxSummary     = 1000
)
