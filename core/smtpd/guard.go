package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/sdk"
)

// guardConn is the net.Conn that go-smtp serves. It sits between the socket
// (or the TLS connection, which it owns) and go-smtp's line reader, so that it
// sees every command in plaintext before go-smtp does. go-smtp gets exactly
// one command line per Read; that keeps replies in order under PIPELINING
// and leaves nothing buffered in go-smtp when STARTTLS switches transports
// (RFC 3207 4.2: plaintext sent after STARTTLS is discarded, not executed).
//
// It also answers what go-smtp would get wrong: VRFY, EXPN, TURN, BDAT and
// unknown verbs; counts bad commands; applies the per-read command and data
// timeouts; and adapts the EHLO reply (STARTTLS, SIZE, no CHUNKING).
//
// The fields are used only from the connection's own goroutine (go-smtp
// reads, handles and writes in one goroutine); other goroutines only touch
// the socket (wake, forceClose) and Close, which is once-only.
type guardConn struct {
	raw   net.Conn      // the socket
	inner net.Conn      // raw, or the TLS connection over it
	br    *bufio.Reader // over inner
	srv   *generation
	info  connInfo
	log   *slog.Logger

	tlsState *tls.ConnectionState
	pend     []byte    // rest of a line go-smtp had no room for
	partial  []byte    // start of a command line not read whole yet
	deadline time.Time // the read deadline in force
	inTxn    bool      // between a successful MAIL and the end of the transaction

	lastVerb  string      // the verb of the last line handed to go-smtp
	esmtp     bool        // the client's last greeting was EHLO, not HELO
	saslNext  bool        // a 334 was sent: the next line is a SASL response
	needEHLO  bool        // after STARTTLS, until the client says EHLO again
	dataMode  bool        // between 354 and the end-of-data line
	dataState int         // end-of-data state machine (same as go-smtp's)
	dataCheck lineChecker // bare CR/LF/NUL in the raw DATA bytes
	earlyData bool        // bytes were waiting when 354 was written
	synthEOD  bool        // the body was read past go-smtp: give its reader a bare end of data
	bad       int         // bad commands so far
	pregreet  bool        // the client talked before the greeting (conn.pregreet)
	closing   bool        // next Read returns EOF
	// refusalCounted: the refusal being written was counted already
	// (countRefusal); afterReply counts the others.
	refusalCounted bool
	forced         atomic.Bool // the shutdown grace is over: end the session at its next read (forceClose)
	authed         bool        // AUTH succeeded on this connection
	readErr        error       // why the last command read failed (connectionLost)
	onTLS          func()      // set by the session: forget state after STARTTLS
	sess           *session    // go-smtp's session, from the first accepted EHLO
	connResult     map[string]*sdk.Result
	mailParams     map[string]string // of the current transaction, for rules

	closeOnce sync.Once
	release   func() // frees the connection slots
}

// connInfo is what is known of the client before the greeting.
type connInfo struct {
	id          string
	ip          netip.Addr
	port        int
	hostname    string // forward-confirmed rDNS, "" if unknown
	hostnameErr string // why the lookup failed, "" if the DNS answered
	listener    *listenerConf
}

// Verbs go-smtp is allowed to see; everything else is answered here.
var knownVerbs = map[string]bool{
	"HELO": true, "EHLO": true, "MAIL": true, "RCPT": true, "DATA": true,
	"RSET": true, "NOOP": true, "QUIT": true, "AUTH": true,
}

func newGuard(raw net.Conn, br *bufio.Reader, g *generation, info connInfo, log *slog.Logger) *guardConn {
	return &guardConn{raw: raw, inner: raw, br: br, srv: g, info: info, log: log}
}

// verbOf splits a command line the way go-smtp's parseCmd does.
func verbOf(line string) (verb, arg string) {
	line = strings.TrimRight(line, "\r\n")
	if len(line) >= 8 && strings.EqualFold(line[:8], "STARTTLS") {
		return "STARTTLS", strings.TrimSpace(line[8:])
	}
	if len(line) == 4 {
		return strings.ToUpper(line), ""
	}
	if len(line) > 4 && line[4] == ' ' {
		return strings.ToUpper(line[:4]), strings.TrimSpace(line[5:])
	}
	return strings.ToUpper(line), ""
}

func (c *guardConn) setReadDeadline() {
	d := c.srv.cfg.Limits.CommandTimeout.D()
	if c.dataMode {
		d = c.srv.cfg.Limits.DataTimeout.D()
	}
	if c.srv.draining() && c.idle() {
		// Shutting down: an idle client gets a moment to say QUIT, not minutes.
		d = min(d, time.Second)
	}
	c.deadline = time.Time{}
	if d > 0 {
		c.deadline = time.Now().Add(d)
	}
	_ = c.inner.SetReadDeadline(c.deadline)
}

// idle: no transaction, no DATA, no AUTH exchange under way.
func (c *guardConn) idle() bool {
	return !c.inTxn && !c.dataMode && !c.saslNext && len(c.partial) == 0
}

// wake interrupts a blocked read at shutdown (safe from any goroutine: it
// only touches the socket's deadline). An idle session then says 421 and
// ends; a busy one reads on.
func (c *guardConn) wake() { _ = c.raw.SetReadDeadline(time.Now()) }

// interrupted reports a read cut short by wake, not by the real deadline.
func (c *guardConn) interrupted(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) && c.srv.draining() && !c.forced.Load() &&
		(c.deadline.IsZero() || time.Now().Before(c.deadline))
}

// Read hands go-smtp one command line, or message bytes inside DATA.
func (c *guardConn) Read(p []byte) (int, error) {
	if n, ok := c.readHeld(p); ok {
		return n, nil
	}
	for {
		if c.closing {
			return 0, io.EOF
		}
		if c.forced.Load() { // before a new deadline could hide forceClose's wake
			return c.forcedEnd()
		}
		c.setReadDeadline()
		if c.forced.Load() {
			continue // forceClose came between the check and the new deadline, which hid its wake
		}
		if c.dataMode {
			n, again, err := c.readMessage(p)
			if again {
				continue
			}
			return n, err
		}
		line, again, err := c.readLine()
		if err != nil {
			return 0, err
		}
		if again {
			continue
		}
		if c.saslNext {
			// A SASL response, no command: go-smtp's AUTH reads it.
			c.saslNext = false
			return c.hand(p, line, ""), nil
		}
		if n, ok := c.command(p, line); ok {
			return n, nil
		}
	}
}

// readHeld hands over what an earlier read kept back, before anything new
// is read: the bare end of data owed to go-smtp's reader (readBody), or
// the rest of a line that did not fit its buffer (hand).
func (c *guardConn) readHeld(p []byte) (int, bool) {
	if c.synthEOD {
		c.synthEOD = false
		return copy(p, ".\r\n"), true
	}
	if len(c.pend) > 0 {
		n := copy(p, c.pend)
		c.pend = c.pend[n:]
		return n, true
	}
	return 0, false
}

// forcedEnd ends the session at its first read after forceClose: in DATA
// by failing the read (the 421 is Data's reply, dataError), elsewhere by
// saying 421 here.
func (c *guardConn) forcedEnd() (int, error) {
	if c.dataMode {
		return 0, errForcedShutdown
	}
	c.log.Info("closed session for shutdown: grace over", "in_transaction", !c.idle())
	c.reply(replyShuttingDown)
	return 0, io.EOF
}

// readMessage is readData under the shutdown rules. again: the read was
// cut short by wake, not by the data timeout, and goes on (a session in
// DATA is busy). A read cut by forceClose fails with errForcedShutdown:
// the 421 is Data's reply (dataError).
func (c *guardConn) readMessage(p []byte) (n int, again bool, err error) {
	n, err = c.readData(p)
	if c.interrupted(err) {
		return 0, true, nil
	}
	if c.forced.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
		return n, false, errForcedShutdown
	}
	return n, false, err
}

// readLine reads one whole command line. again: there is no line to hand
// on yet (one longer than the read buffer was gathered in part, one longer
// than max_line_length was refused, a read was cut short by wake); err:
// the read failed and the session ends.
func (c *guardConn) readLine() (line []byte, again bool, err error) {
	line, err = c.br.ReadSlice('\n')
	if len(c.partial) > 0 {
		line, c.partial = append(c.partial, line...), nil
	}
	if len(line) > c.maxLine() {
		// Refused before its end is read: it may have none.
		verb, _ := verbOf(string(line[:min(len(line), 16)]))
		c.refuseCommand(verb, replyLineTooLong)
		c.closing = true
		return nil, true, nil
	}
	if errors.Is(err, bufio.ErrBufferFull) {
		// A line longer than the read buffer: it is gathered whole
		// (up to max_line_length) and checked as any other, never
		// handed over in pieces past the checks in command.
		c.partial = append([]byte(nil), line...)
		return nil, true, nil
	}
	if err != nil {
		again, err = c.readFailed(line, err)
		return nil, again, err
	}
	return line, false, nil
}

// readFailed handles a command read that failed, with line the part of a
// line read before it. At shutdown an idle session is told 421 and a
// busy one woken only to look (wake) reads on, its part line kept.
func (c *guardConn) readFailed(line []byte, err error) (again bool, _ error) {
	if c.srv.draining() && errors.Is(err, os.ErrDeadlineExceeded) {
		if len(line) == 0 && c.idle() {
			c.log.Info("closed idle session for shutdown")
			c.reply(replyShuttingDown)
			return false, io.EOF
		}
		if c.forced.Load() {
			return true, nil // said at the top of Read's loop
		}
		if c.interrupted(err) {
			c.partial = append([]byte(nil), line...)
			return true, nil
		}
	}
	// The command timeout, or the client went away. A line cut
	// short by it is dropped, not executed: it never passed the
	// checks in command (RFC 5321 4.5.3.2.7: the server closes on a
	// timeout; go-smtp then says 421 4.4.2).
	if len(line) > 0 {
		c.log.Info("dropped incomplete command line", "bytes", len(line), "err", err)
	}
	c.readErr = err
	return false, err
}

// command checks a whole command line, answers or rewrites what go-smtp
// would get wrong, and hands the line on to p. ok false: answered here,
// nothing handed on. The rewritten lines are built here, not returned by
// a helper: they stay off the heap as they were.
func (c *guardConn) command(p, line []byte) (n int, ok bool) {
	verb, arg := verbOf(string(line))
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		c.logCommand(verb, arg)
	}
	if !cleanCommand(line) {
		// RFC 5321 2.3.8: CR and LF only as CRLF; 4.1.1.4 (NUL).
		// go-smtp takes a bare LF for a line end and passes bare
		// CR and NUL on into addresses, HELO names and replies.
		c.refuseCommand(verb, replyBadCommandBytes)
		return 0, false
	}
	if c.intercept(verb, arg) {
		return 0, false
	}
	if verb == "MAIL" || verb == "RCPT" {
		if reply := c.paramProblem(verb, arg); reply != "" {
			c.refuseParams(verb, reply)
			return 0, false
		}
	}
	switch verb {
	case "RCPT":
		if to, ok := c.rcptArg(arg); ok {
			line = []byte("RCPT " + to + "\r\n")
		}
	case "MAIL":
		if atInSenderDomain(arg) {
			c.refuseSender(arg)
			return 0, false
		}
		if from, ok := clampSize(arg); ok {
			line = []byte("MAIL " + from + "\r\n")
		}
	case "EHLO", "HELO":
		if name, _, _ := strings.Cut(arg, " "); name != "" {
			// Not a greeting without a name: go-smtp refuses it and
			// the last greeting stands.
			c.esmtp = verb == "EHLO"
		}
	}
	return c.hand(p, line, verb), true
}

// Refusals of MAIL and RCPT parameters that the guard answers before
// go-smtp (paramProblem).
const (
	replyDuplicateParam = "501 5.5.4 Duplicate parameter"
	replySMTPUTF8Value  = "501 5.5.4 SMTPUTF8 takes no value"
	replyUnknownMailArg = "555 5.5.4 Unknown MAIL FROM argument" // as go-smtp's, made 555 (paramRefusal)
	replyUnknownRcptArg = "555 5.5.4 Unknown RCPT TO argument"
)

// goSMTPParams are the parameter keywords go-smtp's MAIL and RCPT parsers
// know (offered or not: it answers those itself).
var goSMTPParams = map[string]map[string]bool{
	"MAIL": {"SIZE": true, "SMTPUTF8": true, "REQUIRETLS": true, "BODY": true, "RET": true, "ENVID": true, "AUTH": true},
	"RCPT": {"NOTIFY": true, "ORCPT": true, "RRVS": true, "BY": true, "MT-PRIORITY": true},
}

// paramProblem is the refusal of the parameters of a MAIL or RCPT
// argument, or "" to let go-smtp parse them. go-smtp reads parameters
// into a map: it kept the last of a repeated one (RET=HDRS RET=FULL,
// NOTIFY twice), which Postfix refuses, and answered for whichever of two
// bad ones its map gave first, a different reply from one try to the
// next; and it took a value for SMTPUTF8, which has none (RFC 6531 3.4).
func (c *guardConn) paramProblem(verb, arg string) string {
	if c.sess == nil || (verb == "MAIL") == c.inTxn {
		// Out of sequence (MAIL before EHLO or inside a transaction,
		// RCPT before MAIL): go-smtp's 503 comes first, as Postfix's.
		return ""
	}
	params := cmdParams(arg)
	if params == "" {
		return ""
	}
	// After HELO too, as Postfix takes them (RFC 5321 leaves it open): a
	// legacy client that greets with HELO and sends SIZE= keeps working.
	seen := map[string]bool{}
	for _, p := range strings.Fields(params) {
		key, _, hasValue := strings.Cut(p, "=")
		key = strings.ToUpper(key)
		switch {
		case !goSMTPParams[verb][key]:
			if verb == "MAIL" {
				return replyUnknownMailArg
			}
			return replyUnknownRcptArg
		case seen[key]:
			return replyDuplicateParam
		case key == "SMTPUTF8" && hasValue:
			return replySMTPUTF8Value
		}
		seen[key] = true
	}
	return ""
}

// cmdParams is the parameters of a MAIL or RCPT argument ("FROM:<path>
// params"), "" for none: the words after the path as go-smtp ends it
// (pathBounds), so that the guard checks the words go-smtp reads. A path
// that does not end is go-smtp's syntax error to answer.
func cmdParams(arg string) string {
	end, _, ok := pathBounds(arg)
	if !ok {
		return ""
	}
	return strings.TrimSpace(arg[end:]) // after a bare path, a '>' stays: go-smtp reads it as a word
}

// refuseParams logs, counts and sends a refusal of paramProblem's, under
// the phase of the command.
func (c *guardConn) refuseParams(verb, reply string) {
	phase := replyPhase(verb)
	code, _ := strconv.Atoi(reply[:3])
	c.log.Info("refused", "phase", phase, "command", verb, "reply", reply, "code", code)
	c.countRefusal(phase, code)
	c.reply(reply)
}

// rcptArg rewrites what go-smtp's parser refuses in an RCPT argument but
// RFC 5321 and Postfix need taken: a domainless postmaster
// (postmasterRcpt) and a UTF-8 ORCPT (utf8Orcpt), and reports whether it
// changed anything.
func (c *guardConn) rcptArg(arg string) (string, bool) {
	changed := false
	if to, ok := postmasterRcpt(arg, c.srv.cfg); ok {
		c.log.Info("rcpt postmaster without a domain", "rcpt", policy.Postmaster(c.srv.cfg))
		arg, changed = to, true
	}
	if to, ok := utf8Orcpt(arg); ok {
		arg, changed = to, true
	}
	return arg, changed
}

// maxLine is the longest command line taken, CRLF included.
func (c *guardConn) maxLine() int {
	if n := c.srv.cfg.Limits.MaxLineLength; n > 0 {
		return n
	}
	return readBufSize
}

// hand copies line to p. A line longer than p is handed in pieces; the
// verb was already checked.
func (c *guardConn) hand(p, line []byte, verb string) int {
	n := copy(p, line)
	if n < len(line) {
		// go-smtp's buffer is normally empty when it asks for a line, so
		// this is rare; the verb was already checked.
		c.pend = append(c.pend[:0], line[n:]...)
	}
	if verb != "" {
		c.lastVerb = verb
	}
	return n
}

// maxHeloName is the longest HELO name taken: a domain's 255 octets (RFC
// 1035 2.3.4; an address literal is shorter).
const maxHeloName = 255

// intercept answers the commands go-smtp must not see. It reports true
// when it replied itself.
func (c *guardConn) intercept(verb, arg string) bool {
	switch {
	case verb == "STARTTLS":
		c.startTLS(arg)
		return true
	case verb == "VRFY", verb == "EXPN", verb == "TURN", verb == "BDAT":
		c.refuseCommand(verb, replyNotImplemented)
		return true
	case verb == "RSET" && arg != "":
		// RFC 5321 4.1.1.5: no parameters. go-smtp ignored them and
		// reset; a syntax error resets nothing.
		c.refuseCommand(verb, replySyntaxNoParams)
		return true
	case !knownVerbs[verb]:
		c.refuseCommand(verb, replyUnknownCommand)
		return true
	case c.needEHLO && verb != "EHLO" && verb != "HELO" && verb != "QUIT" && verb != "NOOP" && verb != "RSET":
		c.refuseCommand(verb, replyNeedEHLO)
		return true
	case c.srv.draining() && verb == "MAIL":
		c.reply(replyShuttingDown)
		c.closing = true
		return true
	}
	if verb == "EHLO" || verb == "HELO" {
		if name, _, _ := strings.Cut(arg, " "); len(name) > maxHeloName {
			// It would go into the Received field as it is, past the
			// 998 octets a header line may have (RFC 5322 2.1.1).
			c.refuseCommand(verb, replyHeloTooLong)
			return true
		}
		if c.sess != nil && c.sess.refuseHelo(arg) {
			// Like a refused first EHLO: no transaction until one passes.
			c.needEHLO = true
			return true
		}
		c.needEHLO = false
	}
	return false
}

// postmasterRcpt rewrites the argument of "RCPT TO:<Postmaster>", which
// RFC 5321 (4.1.1.3, 4.5.1) says must be accepted without a domain and
// go-smtp's parser refuses for want of one, to "TO:<postmaster@DOMAIN>"
// with any parameters kept (policy.Postmaster chooses DOMAIN). The
// address then goes through the relay policy and the rcpt phase like any
// other.
func postmasterRcpt(arg string, cfg *config.Config) (string, bool) {
	if len(arg) < 3 || !strings.EqualFold(arg[:3], "TO:") {
		return "", false
	}
	path := strings.TrimLeft(arg[3:], " ")
	const pm = "<postmaster>"
	if len(path) < len(pm) || !strings.EqualFold(path[:len(pm)], pm) {
		return "", false
	}
	rest := path[len(pm):]
	if rest != "" && rest[0] != ' ' {
		return "", false
	}
	return "TO:<" + policy.Postmaster(cfg) + ">" + rest, true
}

// utf8Orcpt rewrites an RCPT argument whose ORCPT is the rfc822 xtext of a
// UTF-8 address, which Postfix sends for every recipient of SMTPUTF8 mail
// to a server offering DSN, as the utf-8 type (policy.UTF8ORCPT). go-smtp
// refused it with 501 5.5.4, and Postfix bounced the mail.
func utf8Orcpt(arg string) (string, bool) {
	return rewriteParam(arg, "ORCPT=", policy.UTF8ORCPT)
}

// rewriteParam rewrites the values of the parameter key (with its '=',
// any case) in a MAIL or RCPT argument with fn, and reports whether any
// changed. Only words after the path's closing '>' are parameters.
func rewriteParam(arg, key string, fn func(v string) (string, bool)) (string, bool) {
	end := pathEnd(arg)
	if end < 0 {
		return "", false
	}
	words := strings.Split(arg[end+1:], " ")
	changed := false
	for i, w := range words {
		if len(w) <= len(key) || !strings.EqualFold(w[:len(key)], key) {
			continue
		}
		if v, ok := fn(w[len(key):]); ok {
			words[i], changed = key+v, true
		}
	}
	if !changed {
		return "", false
	}
	return arg[:end+1] + strings.Join(words, " "), true
}

// pathEnd is the index of the '>' closing the bracketed path of a MAIL or
// RCPT argument ("FROM:<path> params"), or -1 (no brackets, or a path
// go-smtp refuses). The first '>' of all would take
// TO:<"x> ORCPT=rfc822;..."@example.test> for a parameter and rewrite the
// address: the path ends where pathBounds, reading it as go-smtp does,
// says.
func pathEnd(arg string) int {
	end, bracket, ok := pathBounds(arg)
	if !ok || !bracket {
		return -1
	}
	return end - 1
}

// pathBounds reads the path of a MAIL or RCPT argument where go-smtp's
// parser reads it: after the colon and the blanks it trims (strings.
// TrimSpace), an optional '<', a source route up to its first ':' (read
// as nothing more), then the local part, which when quoted may hold '>',
// blanks and escaped quotes (RFC 5321 4.1.2 Quoted-string; a quote counted
// anywhere, as in a source route "@a\"b:", would misplace it). end is the
// index just past the closing '>' of a bracketed path, or of the blank,
// tab or '>' that ends a bare one (len(arg) when nothing does); ok is
// false where go-smtp refuses the path before its end.
func pathBounds(arg string) (end int, bracket, ok bool) {
	colon := strings.IndexByte(arg, ':')
	if colon < 0 {
		return 0, false, false
	}
	rest := arg[colon+1:]
	i := colon + 1 + len(rest) - len(strings.TrimLeftFunc(rest, unicode.IsSpace))
	bracket = i < len(arg) && arg[i] == '<'
	if bracket {
		i++
	}
	if i < len(arg) && arg[i] == '@' { // a source route, "@a,@b:"
		j := strings.IndexByte(arg[i:], ':')
		if j < 0 {
			return 0, false, false
		}
		i += j + 1
	}
	if i < len(arg) && arg[i] == '"' {
		for i++; i < len(arg) && arg[i] != '"'; i++ {
			if arg[i] == '\\' {
				i++
			}
		}
		if i >= len(arg) {
			return 0, false, false // unterminated: go-smtp refuses it
		}
	}
	if bracket {
		j := strings.IndexByte(arg[i:], '>')
		if j < 0 {
			return 0, false, false
		}
		return i + j + 1, true, true
	}
	if j := strings.IndexAny(arg[i:], " \t>"); j >= 0 {
		return i + j, false, true
	}
	return len(arg), false, true
}

// logCommand logs a command line at debug level (log.level: debug): the
// verb and its argument, made printable and cut short, as they are the
// client's bytes. AUTH shows only its mechanism: an initial response is a
// credential. SASL responses never get here.
func (c *guardConn) logCommand(verb, arg string) {
	if !loggedVerbs[verb] {
		// Not a command: maybe a credential pipelined after a refused
		// AUTH, or message text after a refused DATA. Its size only.
		c.log.Debug("command", "verb", "?", "bytes", len(verb)+len(arg)+1)
		return
	}
	if verb == "AUTH" {
		mech, rest, _ := strings.Cut(arg, " ")
		if rest != "" {
			mech += " [initial response hidden]"
		}
		arg = mech
	}
	c.log.Debug("command", "verb", printable(verb, 16), "arg", printable(arg, 256))
}

// verbForLog is a refused command's verb as the log shows it: a word of
// up to 8 letters, as SMTP verbs are (an unknown one such as XCLIENT
// included); anything else (a credential pipelined after a refused AUTH,
// message text after a refused DATA) only as "?".
func verbForLog(verb string) string {
	if len(verb) == 0 || len(verb) > 8 {
		return "?"
	}
	for i := 0; i < len(verb); i++ {
		if c := verb[i]; c < 'A' || c > 'Z' {
			return "?"
		}
	}
	return verb
}

// loggedVerbs are the commands whose arguments the debug log shows.
var loggedVerbs = map[string]bool{
	"EHLO": true, "HELO": true, "LHLO": true, "MAIL": true, "RCPT": true, "DATA": true, "BDAT": true, "RSET": true,
	"NOOP": true, "QUIT": true, "VRFY": true, "EXPN": true, "HELP": true, "TURN": true, "ETRN": true,
	"STARTTLS": true, "AUTH": true,
}

// printable is s cut to n bytes with anything but printable ASCII as '?'.
func printable(s string, n int) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' {
			return '?'
		}
		return r
	}, prefix(s, n))
}

// replyBadSender refuses a reverse-path that is no address (RFC 3463
// X.1.7: bad sender's mailbox address syntax), as policy.CheckMail does.
const replyBadSender = "553 5.1.7 Sender address rejected: bad address syntax"

// atInSenderDomain reports a MAIL FROM path whose domain holds an '@'
// (<a@b@example.test>, <bad@@example.test>): no address, but go-smtp
// takes the unquoted local part up to the first '@' and the rest for the
// domain, and hands on "a@b@example.test", which reads the same as the
// valid <"a@b"@example.test> it unquotes. So it is judged here, on the
// raw line, where the quotes still are (policy.AtInDomain).
func atInSenderDomain(arg string) bool {
	if len(arg) < 5 || !strings.EqualFold(arg[:5], "FROM:") {
		return false
	}
	// As go-smtp reads it: blanks after the colon.
	return policy.AtInDomain(strings.TrimLeft(arg[5:], " \t"))
}

// refuseSender refuses a MAIL FROM whose domain holds an '@'
// (atInSenderDomain) as the session refuses any other bad sender
// (session.refuse, policy.CheckMail): logged and counted in the mail
// phase, with the sender as the client wrote it, made printable.
func (c *guardConn) refuseSender(arg string) {
	c.log.Info("refused", "phase", "mail", "reply", replyBadSender, "code", 553,
		"from", printable(senderPath(arg), maxSenderLog))
	c.countRefusal("mail", 553)
	c.reply(replyBadSender)
}

// maxSenderLog is the most of a raw sender path a log line shows: a path
// has at most 256 octets (RFC 5321 4.5.3.1.3).
const maxSenderLog = 256

// senderPath is the path of a MAIL argument ("FROM:<path> params") as
// written, without its angle brackets: up to the first '>' or blank
// outside a quoted string.
func senderPath(arg string) string {
	path := strings.TrimPrefix(strings.TrimLeft(arg[len("FROM:"):], " \t"), "<")
	quoted := false
	for i := 0; i < len(path); i++ {
		switch ch := path[i]; {
		case ch == '\\' && quoted:
			i++
		case ch == '"':
			quoted = !quoted
		case !quoted && (ch == '>' || ch == ' '):
			return path[:i]
		}
	}
	return path
}

// clampSize rewrites a MAIL parameter SIZE=N whose N, all digits, does not
// fit go-smtp's 32 bits to SIZE=4294967295. RFC 1870 sets no bound on the
// number, and go-smtp answered such a message, bigger than any limit, with
// "501 5.5.4 Unable to parse SIZE as an integer" (a syntax error) instead
// of the "552 5.3.4" our size check gives: the clamped value still exceeds
// limits.max_message_bytes.
func clampSize(arg string) (string, bool) {
	return rewriteParam(arg, "SIZE=", func(v string) (string, bool) {
		if strings.Trim(v, "0123456789") != "" {
			return "", false // not a number: go-smtp's 501 is right
		}
		if _, err := strconv.ParseUint(v, 10, 32); err != nil {
			return strconv.FormatUint(math.MaxUint32, 10), true
		}
		return "", false
	})
}

// cleanCommand reports a command line that ends in CRLF and has no other
// CR and no NUL (it has no other LF: it was read up to the first).
func cleanCommand(line []byte) bool {
	n := len(line)
	return n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' &&
		bytes.IndexByte(line[:n-2], '\r') < 0 && bytes.IndexByte(line, 0) < 0
}

// refuseCommand logs and answers a command the guard refuses. The verb is
// cut short and made printable: it is attacker bytes. The line has code=,
// as every other refusal's: a filter on the code finds them all.
func (c *guardConn) refuseCommand(verb, reply string) {
	code, _ := strconv.Atoi(prefix(reply, 3))
	c.log.Info("refused", "command", verbForLog(verb), "reply", reply, "code", code)
	c.countCommandRefusal(reply)
	c.reply(reply)
}

// reply writes one of our own replies (counting bad commands). They are
// sent as they are: Write's rewrites are for go-smtp's replies.
func (c *guardConn) reply(line string) {
	b := []byte(line + "\r\n")
	code, _ := strconv.Atoi(prefix(line, 3))
	_, _ = c.write(b, b, code, string(b))
}

func (c *guardConn) bodyDone() bool { return !c.dataMode }

// readBody is Read for the bodyReader: raw message bytes up to and
// including the end-of-data line, with the same deadlines and checks.
// Once the end is read, go-smtp's own reader is handed a bare end of data.
func (c *guardConn) readBody(p []byte) (int, error) {
	for {
		if c.closing {
			return 0, io.EOF
		}
		if !c.dataMode {
			return 0, io.EOF
		}
		if c.forced.Load() { // before a new deadline could hide forceClose's wake
			return 0, errForcedShutdown
		}
		c.setReadDeadline()
		if c.forced.Load() { // or it came just before the deadline was set
			return 0, errForcedShutdown
		}
		n, again, err := c.readMessage(p)
		if again {
			continue
		}
		if !c.dataMode { // not after errForcedShutdown: a failed read ends no DATA
			c.synthEOD = true
		}
		return n, err
	}
}

// readData passes message bytes through up to and including the
// end-of-data line, then returns to command mode.
func (c *guardConn) readData(p []byte) (int, error) {
	if c.br.Buffered() == 0 {
		if _, err := c.br.Peek(1); err != nil {
			return 0, err
		}
	}
	n := c.br.Buffered()
	if n > len(p) {
		n = len(p)
	}
	buf, _ := c.br.Peek(n)
	var end int
	c.dataState, end = scanDataEnd(c.dataState, buf)
	if end >= 0 {
		n = end
		c.dataMode = false
		c.dataState = dsBeginLine
	}
	// Checked here, before dot-unstuffing: go-smtp's reader drops a CR
	// that follows a leading dot, hiding "\r\n.\r" from later checks.
	_, _ = c.dataCheck.Write(buf[:n])
	copy(p, buf[:n])
	_, _ = c.br.Discard(n)
	return n, nil
}

// The end-of-data states: <CRLF>.<CRLF>, exactly as go-smtp's dataReader
// recognises it (RFC 5321 4.1.1.4).
const (
	dsBeginLine = iota
	dsDot
	dsDotCR
	dsCR
	dsData
	dsEOF
)

// scanDataEnd runs buf through the end-of-data states from s and returns
// the state after it and the length up to and including the final LF of
// the end of data, or -1. Inside a line only a CR can change the state, so
// it jumps from CR to CR with a vectorised search.
func scanDataEnd(s int, buf []byte) (int, int) {
	for i := 0; i < len(buf); i++ {
		if s == dsData {
			j := bytes.IndexByte(buf[i:], '\r')
			if j < 0 {
				return dsData, -1
			}
			i += j
		}
		if s = nextDataState(s, buf[i]); s == dsEOF {
			return s, i + 1
		}
	}
	return s, -1
}

func nextDataState(s int, b byte) int {
	switch {
	case s == dsBeginLine && b == '.':
		return dsDot
	case s == dsDot && b == '\r':
		return dsDotCR
	case s == dsDotCR && b == '\n':
		return dsEOF
	case s == dsCR && b == '\n':
		return dsBeginLine
	case b == '\r':
		return dsCR
	}
	return dsData
}
