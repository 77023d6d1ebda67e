package smtpd

import (
	"bytes"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/smtperr"
)

// Replies the guard writes itself (RFC 5321 4.2, RFC 3463 codes).
const (
	replyNotImplemented  = "502 5.5.1 Command not implemented"
	replyUnknownCommand  = "500 5.5.2 Command not recognized"
	replyNeedEHLO        = "503 5.5.1 Send EHLO first"
	replyHeloTooLong     = "501 5.5.2 HELO name too long (a domain has at most 255 octets)"
	replyShuttingDown    = "421 4.3.2 Service shutting down, try again later"
	replySyntaxNoParams  = "501 5.5.4 Syntax error, no parameters allowed"
	replyAlreadyTLS      = "503 5.5.1 TLS already active"
	replyBadSequence     = "503 5.5.1 Bad sequence of commands"
	replyBye             = "221 2.0.0 Bye" // as go-smtp answers QUIT
	replyReadyTLS        = "220 2.0.0 Ready to start TLS"
	replyPregreet        = "554 5.5.1 Protocol error: client sent data before greeting"
	replyAuthBadBase64   = "501 5.5.2 Cannot decode response: not base64"
	replyLineTooLong     = "500 5.5.2 Line too long, closing connection"
	replyBadCommandBytes = "500 5.5.2 Syntax error: bare CR, bare LF or NUL in command"
)

func replyTooManyBad(host string) string { return errTooManyBad(host).Reply() }

// errTooManyBad is the reply past limits.max_bad_commands.
func errTooManyBad(host string) *smtperr.Error {
	return smtperr.New(421, "4.7.0", host+" Too many errors, closing connection")
}

func replyTooManyConns(host string) string {
	return "421 4.7.0 " + host + " Too many connections, try again later"
}

func replyConnRate(host string) string {
	return "421 4.7.0 " + host + " Too many connections from your address in the last minute, try again later"
}

func replyTooManyFromIP(host string) string {
	return "421 4.7.0 " + host + " Too many connections from your address, try again later"
}

// Errors the session returns through go-smtp.
var (
	errAuthRequired  = smtperr.New(530, "5.7.0", "Authentication required")
	errAuthInvalid   = smtperr.New(535, "5.7.8", "Authentication credentials invalid")
	errAuthLocked    = smtperr.New(454, "4.7.0", "Too many authentication failures, try again later")
	errAuthNotHere   = smtperr.New(503, "5.5.1", "Authentication not available")
	errAuthInTxn     = smtperr.New(503, "5.5.1", "AUTH not permitted during a mail transaction")
	errNestedMail    = smtperr.New(503, "5.5.1", "Nested MAIL command")
	errAuthNeedsTLS  = smtperr.New(538, "5.7.11", "Encryption required for requested authentication mechanism")
	errAuthMech      = smtperr.New(504, "5.5.4", "Unrecognized authentication mechanism")
	errTooBig        = smtperr.New(552, "5.3.4", "Message size exceeds fixed limit")
	errNeedSMTPUTF8  = smtperr.New(553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter")
	errTooManyRcpts  = smtperr.New(452, "4.5.3", "Too many recipients")
	errBareLine      = smtperr.New(550, "5.6.0", "Message contains bare CR, bare LF or NUL")
	errEarlyData     = smtperr.New(554, "5.5.0", "Protocol error: message sent before the 354 reply")
	errRejectDefault = smtperr.New(550, "5.7.1", "Message rejected by policy")
	errRcptDefault   = smtperr.New(550, "5.7.1", "Recipient rejected by policy")
	errTempDefault   = smtperr.New(451, "4.7.1", "Try again later")
	errConnReject    = smtperr.New(554, "5.7.1", "Service unavailable")
	errConnTempfail  = smtperr.New(421, "4.7.0", "Try again later")
	errDataTimeout   = smtperr.New(421, "4.4.2", "Timeout exceeded, closing connection")
	errShutdownData  = smtperr.New(421, "4.3.2", "Service shutting down, try again later")
)

// toSMTP turns any error into the go-smtp reply type, so that go-smtp never
// writes a plain Go error's text to a client (it does for other types).
// The cause, if any, goes to the log.
func toSMTP(log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	e := smtperr.As(err)
	if e.Cause != nil && !e.Client {
		// A client's own mistake (a malformed address) is no internal
		// error: the refusal's line logs it as its reason (refuse).
		log.Warn("internal error", "reply", e.Reply(), "err", e.Cause)
	}
	return smtpError(e)
}

// smtpError is e as it goes out. Made safe here as well as in write, so
// that a refusal's log line shows the reply as sent.
func smtpError(e *smtperr.Error) *smtp.SMTPError {
	return &smtp.SMTPError{Code: e.Code, EnhancedCode: enhanced(e.Enhanced, e.Code), Message: fitReply(e.Enhanced, wireText(e.Text))}
}

// enhanced parses "5.7.1"; a malformed one becomes X.0.0.
func enhanced(s string, code int) smtp.EnhancedCode {
	parts := strings.Split(s, ".")
	if len(parts) == 3 {
		var ec smtp.EnhancedCode
		ok := true
		for i, p := range parts {
			n, err := strconv.Atoi(p)
			if err != nil {
				ok = false
			}
			ec[i] = n
		}
		if ok {
			return ec
		}
	}
	return smtp.EnhancedCode{code / 100, 0, 0}
}

// decisionError is the reply for a reject or tempfail decision: the rule's
// own reply when it has one, else def. utf8: the client asked for
// SMTPUTF8 in this transaction.
func decisionError(d *pipeline.Decision, def *smtperr.Error, utf8 bool) *smtperr.Error {
	if d.Reply != nil && d.Reply.Code >= 400 && d.Reply.Code < 600 {
		text := d.Reply.Text
		if !utf8 {
			text = asciiReply(text)
		}
		return smtperr.New(d.Reply.Code, d.Reply.Enhanced, fitReply(d.Reply.Enhanced, text))
	}
	return def
}

// WireReply is a rule's reply r as a session sends it ("550 5.7.1 text"):
// ASCII unless utf8 (the client asked for SMTPUTF8), cut to fit a reply
// line. `portcullis scan` shows it so, not as the template made it.
func WireReply(r *pipeline.Reply, utf8 bool) string {
	if r == nil {
		return ""
	}
	return decisionError(&pipeline.Decision{Reply: r}, smtperr.New(451, "4.3.0", ""), utf8).Reply()
}

// asciiReply is a rule's reply text with every character that is not
// printable ASCII as '?': reply text is ASCII (RFC 5321 4.2) unless the
// client asked for SMTPUTF8 (RFC 6531 3.7.4.2), and a template may hold a
// decoded Subject or a file name in any script. Postfix's smtpd does the
// same.
func asciiReply(s string) string { return printable(s, len(s)) }

// maxReplyLine is the longest reply line, CRLF included (RFC 5321
// 4.5.3.1.5).
const maxReplyLine = 512

// fitReply cuts a rule's reply text (its template may hold a subject or
// an address of any length) so that "CODE ENHANCED TEXT\r\n" fits
// maxReplyLine, at a character boundary.
func fitReply(enhanced, text string) string {
	// An empty or malformed enhanced code goes out as X.0.0 (enhanced).
	return cutUTF8(text, maxReplyLine-len("550 ")-max(len(enhanced), len("5.0.0"))-len(" \r\n"))
}

// wireText is reply text with every character that is not printable (a
// control byte such as ESC, CR or BEL; invalid UTF-8) as '?': RFC 5321
// 4.2 allows HT, SP and printable ASCII in a reply, RFC 6531 3.7.4.2
// UTF-8 too in an SMTPUTF8 transaction (asciiReply makes a rule's reply
// ASCII outside one; an address with UTF-8 is refused outside one).
func wireText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || (r != '\t' && !unicode.IsGraphic(r)) {
			return '?'
		}
		return r
	}, s)
}

// wireSafe is out, one or more reply lines, as they may go on the wire:
// each line's text through wireText and cut to maxReplyLine octets. Every
// reply passes here (guardConn.write), go-smtp's and our own: the code
// paths that put client bytes into a reply (the relay policy's address
// echo, a rule's reply) make it so themselves, and log it as sent; this is
// the net for any that does not.
func wireSafe(out []byte) []byte {
	if cleanReply(out) {
		return out
	}
	var b []byte
	for len(out) > 0 {
		line, rest, _ := bytes.Cut(out, []byte("\r\n"))
		b = append(b, cutUTF8(wireText(string(line)), maxReplyLine-len("\r\n"))...)
		b = append(b, "\r\n"...)
		out = rest
	}
	return b
}

// cleanReply reports reply lines that are printable ASCII (or HT), each
// ended by CRLF and within maxReplyLine: the replies the gateway writes
// almost always are.
func cleanReply(out []byte) bool {
	n := 0 // octets of the current line
	for i := 0; i < len(out); i++ {
		n++
		switch c := out[i]; {
		case c == '\r' && i+1 < len(out) && out[i+1] == '\n':
			if n+1 > maxReplyLine {
				return false
			}
			i, n = i+1, 0
		case c == '\t', c >= ' ' && c <= '~':
		default:
			return false
		}
	}
	return n == 0
}

// replyLine is the wire form of err, for replies written outside go-smtp.
// It is the line go-smtp would send for e (toSMTP), so that a decision's
// reply reads the same on every path.
func replyLine(e *smtperr.Error) string { return replyText(smtpError(e)) }
