package smtpd

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/net/idna"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/queue"
	"github.com/portcullis-mta/portcullis/core/smtperr"
	"github.com/portcullis-mta/portcullis/sdk"
)

// session is one SMTP session from EHLO on (go-smtp creates it at EHLO).
type session struct {
	gc  *guardConn
	sc  *smtp.Conn
	log *slog.Logger

	authed bool
	user   string

	// The transaction.
	from     string
	mailOpts smtp.MailOptions
	rcpts    []*queue.Recipient
	results  map[string]*sdk.Result
	held     *pipeline.Decision // a discard or quarantine decided before DATA
	msgID    string             // the Message-ID of the message in DATA, for its queued line
	hasMsgID bool               // the message in DATA has a Message-ID field
	hasDate  bool               // and a Date field
}

var _ smtp.AuthSession = (*session)(nil)

// NewSession is go-smtp's hook at the first EHLO: it runs the helo phase.
func (g *generation) NewSession(sc *smtp.Conn) (smtp.Session, error) {
	gc, ok := sc.Conn().(*guardConn)
	if !ok {
		return nil, toSMTP(g.log, errTempDefault)
	}
	s := &session{gc: gc, sc: sc, log: gc.log}
	s.log.Info("helo", "helo", sc.Hostname(), "hostname", gc.info.hostname)
	req := &sdk.Request{Phase: sdk.PhaseHelo, Conn: s.conn()}
	if _, e := gc.runPhase(req, gc.connResult, errRejectDefault, errTempDefault); e != nil {
		s.log.Info("refused", "phase", "helo", "helo", sc.Hostname(), "reply", replyLine(e))
		s.gc.countRefusal("helo", e.Code)
		return nil, toSMTP(s.log, e)
	}
	gc.onTLS, gc.sess = s.afterTLS, s
	return s, nil
}

// refuseHelo runs the helo phase for an EHLO or HELO after the first one,
// which go-smtp handles without calling NewSession: without this a client
// passes the helo phase with one name and then uses another. It reports
// true when it sent the refusal.
func (s *session) refuseHelo(arg string) bool {
	name, _, _ := strings.Cut(arg, " ") // as go-smtp's parseHelloArgument
	if name == "" {
		return false // go-smtp answers the syntax error
	}
	req := &sdk.Request{Phase: sdk.PhaseHelo, Conn: s.gc.sdkConn(name, s.authed, s.user)}
	_, e := s.gc.runPhase(req, s.gc.connResult, errRejectDefault, errTempDefault)
	if e == nil {
		return false
	}
	s.log.Info("refused", "phase", "helo", "helo", name, "reply", replyLine(e))
	s.gc.countRefusal("helo", e.Code)
	s.gc.reply(replyLine(e))
	return true
}

func (s *session) conn() sdk.Conn { return s.gc.sdkConn(s.sc.Hostname(), s.authed, s.user) }

func (s *session) client() Client {
	return Client{IP: s.gc.info.ip, Authenticated: s.authed, User: s.user}
}

// afterTLS forgets what was learnt before STARTTLS (RFC 3207 4.2).
func (s *session) afterTLS() {
	s.Reset()
	s.authed, s.user = false, ""
}

// Reset ends the transaction (RSET, EHLO, after DATA).
func (s *session) Reset() {
	s.from, s.mailOpts, s.rcpts, s.results, s.held = "", smtp.MailOptions{}, nil, nil, nil
	s.gc.mailParams = nil
	s.gc.inTxn = false
}

// Logout is the end of the session.
func (s *session) Logout() error { return nil }

// Mail starts a transaction (RFC 5321 3.3).
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	// go-smtp hands the address unquoted ("john smith"@x as `john
	// smith@x`); logs show it in its envelope form (RFC 5321 4.1.2).
	shown := policy.WirePath(from)
	if s.gc.inTxn {
		// RFC 5321 4.1.4: no MAIL inside a transaction. go-smtp would
		// accept it and keep the recipients that the rcpt phase judged
		// with the other sender.
		return s.refuse("mail", errNestedMail, "from", shown)
	}
	if s.gc.info.listener.Auth == "required" && !s.authed {
		return s.refuse("mail", errAuthRequired, "from", shown)
	}
	if !opts.UTF8 && !isASCII(from) {
		return s.refuse("mail", errNeedSMTPUTF8, "from", shown)
	}
	if max := s.gc.srv.cfg.Limits.MaxMessageBytes; max > 0 && opts.Size > max {
		return s.refuse("mail", errTooBig, "from", shown, "size", opts.Size)
	}
	if err := s.gc.srv.spaceFor(opts.Size); err != nil {
		return s.refuse("mail", err, "from", shown, "size", opts.Size)
	}
	if err := s.gc.srv.d.Policy.CheckMail(s.client(), from); err != nil {
		return s.refuse("mail", err, "from", shown)
	}
	// As for recipients: the stages, the queue and the DSN see the domain
	// in A-label form, so that an ASCII local part at an IDN domain can
	// go on to a next hop without SMTPUTF8.
	from = asciiDomain(from)
	shown = policy.WirePath(from)
	s.results = copyResults(s.gc.connResult)
	s.gc.mailParams = mailParams(opts)
	req := &sdk.Request{Phase: sdk.PhaseMail, Conn: s.conn(), Envelope: sdk.Envelope{From: from}}
	d, e := s.gc.runPhase(req, s.results, errRejectDefault, errTempDefault)
	if e != nil {
		s.results = nil
		return s.refuse("mail", e, "from", shown)
	}
	s.hold(d)
	s.from, s.mailOpts = from, *opts
	s.gc.inTxn = true
	s.log.Info("mail", "from", shown, "size", opts.Size)
	return nil
}

// Rcpt adds one recipient; a refusal applies to it alone.
func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	shown := policy.WirePath(to) // as in Mail
	if s.hasRcpt(to) {
		// The same mailbox again (<bob@x>, <"bob"@X>): accepted once, as
		// Postfix's cleanup keeps one copy, so the next hop gets one RCPT
		// and the mailbox one message; it does not count again against
		// max_recipients.
		s.log.Info("rcpt", "rcpt", shown, "result", "duplicate")
		return nil
	}
	if max := s.gc.srv.cfg.Limits.MaxRecipients; max > 0 && len(s.rcpts) >= max {
		return s.refuse("rcpt", errTooManyRcpts, "rcpt", shown)
	}
	if !s.mailOpts.UTF8 && !isASCII(to) {
		return s.refuse("rcpt", errNeedSMTPUTF8, "rcpt", shown)
	}
	if err := s.gc.srv.d.Policy.CheckRcpt(s.client(), s.from, to); err != nil {
		return s.refuse("rcpt", err, "rcpt", shown)
	}
	to = asciiDomain(to)
	shown = policy.WirePath(to)
	req := &sdk.Request{Phase: sdk.PhaseRcpt, Conn: s.conn(),
		Envelope: sdk.Envelope{From: s.from, Rcpts: s.rcptAddrs(), Rcpt: to}}
	// The stages' results for this recipient go into a copy, kept only if
	// the recipient is accepted: later phases' rules (results.<stage> at
	// data) must not see a refused recipient's verdicts.
	results := copyResults(s.results)
	d, e := s.gc.runPhase(req, results, errRcptDefault, errTempDefault)
	if e != nil {
		return s.refuse("rcpt", e, "rcpt", shown)
	}
	if err := s.verify(to); err != nil {
		return s.refuse("rcpt", err, "rcpt", shown)
	}
	s.results = results
	s.hold(d)
	s.rcpts = append(s.rcpts, newRecipient(to, opts))
	s.log.Info("rcpt", "rcpt", shown, "result", "accepted")
	return nil
}

// verify asks the server behind the gateway about to, last of the RCPT
// checks, as Postfix advises placing reject_unverified_recipient: no probe
// for a recipient that something cheaper refuses anyway.
//
// A recipient it could not verify (4xx) counts toward max_bad_commands,
// as a 5xx refusal does (Postfix's smtpd_hard_error_limit counts both):
// such answers are not cached, so each costs a probe connection to the
// server behind, and one client must not be able to ask for them without
// end. Past the limit the reply is 421 and the session ends.
func (s *session) verify(to string) error {
	v := s.gc.srv.d.Verifier
	if v == nil {
		return nil
	}
	ctx, cancel := s.gc.phaseContext()
	defer cancel()
	err := v.Verify(ctx, s.log, to)
	if se := (*smtperr.Error)(nil); errors.As(err, &se) && se.Temporary() && s.gc.countBad() {
		return errTooManyBad(s.gc.srv.cfg.Hostname)
	}
	return err
}

// hasRcpt reports whether the transaction has the mailbox to already: the
// same local part (case kept, RFC 5321 2.4) at the same domain (any case,
// U-label or A-label).
func (s *session) hasRcpt(to string) bool {
	key := rcptKey(asciiDomain(to))
	for _, r := range s.rcpts {
		if rcptKey(r.Addr) == key {
			return true
		}
	}
	return false
}

func rcptKey(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	return addr[:i+1] + strings.ToLower(addr[i+1:])
}

// asciiDomain returns rcpt with a non-ASCII domain in its A-label (xn--)
// form, as the relay policy judged it (RFC 5890; UTS 46 mapping, so a
// full-width "ｅｘａｍｐｌｅ.test" is example.test). Rules, the queue and
// delivery's routes then see the domain the policy accepted: left as sent,
// a local domain written in Unicode missed its route and went to "*".
func asciiDomain(rcpt string) string {
	i := strings.LastIndexByte(rcpt, '@')
	if i < 0 || isASCII(rcpt[i+1:]) {
		return rcpt
	}
	d, err := idna.Lookup.ToASCII(rcpt[i+1:])
	if err != nil {
		return rcpt // the policy refuses such a domain before this
	}
	return rcpt[:i+1] + strings.ToLower(d)
}

// isASCII: an address with other bytes needs MAIL FROM's SMTPUTF8 (RFC
// 6531 3.4), or the queue would hold one that delivery cannot send on.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// hold remembers a discard or quarantine decided at MAIL or RCPT: the
// message is still received (the client cannot tell), then handled so.
func (s *session) hold(d *pipeline.Decision) {
	if d != nil && (d.Action == pipeline.Discard || d.Action == pipeline.Quarantine) && s.held == nil {
		s.held = d
	}
}

// refuse logs a refusal with its reason and returns the reply for go-smtp.
// The reply is logged whole, enhanced code included, as Postfix logs
// "reject: RCPT from ...: 554 5.7.1 ...; from=<...> to=<...>"; a refusal
// inside a transaction names its sender.
func (s *session) refuse(phase string, err error, attrs ...any) error {
	e := toSMTP(s.log, err).(*smtp.SMTPError)
	args := []any{"phase", phase, "reply", replyText(e), "code", e.Code}
	if s.gc.inTxn && phase != "mail" {
		args = append(args, "from", policy.WirePath(s.from))
	}
	if se := (*smtperr.Error)(nil); errors.As(err, &se) && se.Client && se.Cause != nil {
		args = append(args, "reason", se.Cause.Error())
	}
	s.log.Info("refused", append(args, attrs...)...)
	s.gc.countRefusal(phase, e.Code)
	return e
}

// replyText is the reply line go-smtp sends for e, without its line end.
func replyText(e *smtp.SMTPError) string {
	c := e.EnhancedCode
	if c == smtp.NoEnhancedCode || c == (smtp.EnhancedCode{}) {
		return fmt.Sprintf("%d %s", e.Code, e.Message)
	}
	return fmt.Sprintf("%d %d.%d.%d %s", e.Code, c[0], c[1], c[2], e.Message)
}

func (s *session) rcptAddrs() []string {
	out := make([]string, len(s.rcpts))
	for i, r := range s.rcpts {
		out[i] = r.Addr
	}
	return out
}

// newRecipient keeps the DSN parameters (RFC 3461 4.1, 4.2).
func newRecipient(to string, opts *smtp.RcptOptions) *queue.Recipient {
	r := &queue.Recipient{Addr: to, Status: queue.RcptPending}
	if opts == nil {
		return r
	}
	for _, n := range opts.Notify {
		r.Notify = append(r.Notify, string(n))
	}
	// An original recipient that is not UTF-8 (raw bytes after "utf-8;",
	// which go-smtp takes as they are) is dropped: the queue would keep it
	// with U+FFFD for each bad byte and pass on an address nobody wrote.
	// The parameter is only informational (RFC 3461 4.2).
	if opts.OriginalRecipient != "" && utf8.ValidString(opts.OriginalRecipient) {
		r.ORCPT = strings.ToLower(string(opts.OriginalRecipientType)) + ";" + opts.OriginalRecipient
	}
	return r
}

// authAllowed: AUTH only under TLS or from loopback (RFC 4954 4: no
// cleartext passwords on the wire), and only where the listener allows it.
func (s *session) authAllowed() bool {
	gc := s.gc
	if gc.srv.d.Auth == nil || gc.info.listener.Auth == "none" || gc.info.listener.Auth == "" {
		return false
	}
	return gc.tlsState != nil || gc.info.ip.IsLoopback()
}

// AuthMechanisms lists what EHLO offers.
func (s *session) AuthMechanisms() []string {
	if !s.authAllowed() {
		return nil
	}
	return s.gc.srv.d.Auth.Mechanisms()
}

// Auth starts one SASL exchange (RFC 4954).
func (s *session) Auth(mech string) (sasl.Server, error) {
	a := s.gc.srv.d.Auth
	switch {
	case !s.authAllowed() && s.gc.offerSTARTTLS() && a != nil && s.gc.info.listener.Auth != "none":
		// RFC 4954 4: AUTH would be offered after STARTTLS.
		return nil, s.refuse("auth", errAuthNeedsTLS, "mechanism", mech)
	case !s.authAllowed():
		return nil, s.refuse("auth", errAuthNotHere, "mechanism", mech)
	case s.gc.inTxn:
		// RFC 4954 4: "MUST be rejected with a 503 reply" during a transaction.
		return nil, s.refuse("auth", errAuthInTxn, "mechanism", mech)
	case a.Locked(s.gc.info.ip):
		s.log.Info("auth", "mechanism", mech, "result", "locked out", "reply", replyLine(errAuthLocked))
		return nil, toSMTP(s.log, errAuthLocked)
	case !slices.ContainsFunc(a.Mechanisms(), func(m string) bool { return strings.EqualFold(m, mech) }):
		return nil, s.refuse("auth", errAuthMech, "mechanism", mech)
	}
	g := &saslGuard{s: s, mech: mech}
	inner, err := a.NewServer(mech, func(u string, err error) { g.user, g.ok = u, err == nil })
	if err != nil {
		return nil, toSMTP(s.log, err)
	}
	g.inner = inner
	return g, nil
}

// saslGuard turns any failure into 535 (never the SASL library's text),
// a malformed response (an *smtperr.Error with code 501) into that reply,
// and feeds the lockout, which it checks at every step.
type saslGuard struct {
	inner sasl.Server
	s     *session
	mech  string
	user  string // as the Authenticator reported it
	ok    bool   // the Authenticator said the credentials check out
}

func (g *saslGuard) Next(resp []byte) ([]byte, bool, error) {
	s, a, ip := g.s, g.s.gc.srv.d.Auth, g.s.gc.info.ip
	if a.Locked(ip) {
		// A lockout that began, through other sessions of this client,
		// while this exchange waited for its answer: no more guesses.
		s.log.Info("auth", "user", g.user, "mechanism", g.mech, "result", "locked out", "reply", replyLine(errAuthLocked))
		return nil, false, toSMTP(s.log, errAuthLocked)
	}
	ch, done, err := g.inner.Next(resp)
	if se := (*smtperr.Error)(nil); errors.As(err, &se) && se.Code == 501 {
		// Malformed (RFC 4954 4: 501 5.5.2): no password was tried.
		s.log.Info("auth", "mechanism", g.mech, "result", "malformed")
		return nil, false, toSMTP(s.log, se)
	}
	if err != nil {
		s.log.Info("auth", "user", g.user, "mechanism", g.mech, "result", "failed")
		if a.Failure(ip, g.user) {
			s.log.Warn("auth lockout started", "ip", ip.String(), "user", g.user)
		}
		return nil, false, toSMTP(s.log, errAuthInvalid)
	}
	if done && (!g.ok || g.user == "") {
		// An exchange that ends without a confirmed user is no login.
		s.log.Warn("auth", "user", g.user, "mechanism", g.mech, "result", "not confirmed")
		return nil, false, toSMTP(s.log, errAuthInvalid)
	}
	if done {
		a.Success(ip, g.user)
		s.authed, s.user = true, g.user
		s.log.Info("auth", "user", s.user, "mechanism", g.mech, "result", "ok")
	}
	return ch, done, nil
}

// decisionLog is the common attributes of a pipeline decision.
func decisionLog(d *pipeline.Decision) []any {
	if d == nil {
		return nil
	}
	return []any{"action", string(d.Action), "rule", d.Rule, "reason", d.Reason}
}
