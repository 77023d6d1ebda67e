package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/core/metrics"
	"github.com/portcullis-mta/portcullis/core/policy"
)

// Write sends go-smtp's (and our own) replies. go-smtp flushes each reply
// line separately, so every call is one line; that lets the guard adapt
// the EHLO reply and see which replies were errors.
func (c *guardConn) Write(p []byte) (int, error) {
	out := wireSafe(p) // before the refusal below is logged: as sent
	line := string(out)
	code, _ := strconv.Atoi(prefix(line, 3))
	if rc, rl, ok := c.rewriteReply(code, line); ok {
		code, line, out = rc, rl, []byte(rl)
	}
	if c.lastVerb == "EHLO" && code == 250 {
		rewritten, keep := c.ehloLine(line)
		if !keep {
			return len(p), nil // a capability we do not offer
		}
		out = []byte(rewritten)
	}
	if c.connectionLost(code, line) {
		return len(p), nil
	}
	if c.goSMTPRefusal(code, line) {
		c.logGoSMTPRefusal(code, strings.TrimRight(line, "\r\n"))
	}
	return c.write(p, out, code, line)
}

// goSMTPRefusal reports the last line of a refusal go-smtp decided itself
// (a syntax error, a command out of sequence, the command timeout): the
// code paths that decide the others log them with their reasons, and AUTH
// logs its outcome itself.
func (c *guardConn) goSMTPRefusal(code int, line string) bool {
	return code >= 400 && code <= 599 && len(line) > 3 && line[3] == ' ' && !c.refusalCounted && c.lastVerb != "AUTH"
}

// logGoSMTPRefusal logs a refusal go-smtp wrote, as the others are
// logged: "a refusal logs the reply as sent".
func (c *guardConn) logGoSMTPRefusal(code int, reply string) {
	if code == 421 && strings.HasPrefix(reply, "421 4.4.2 ") {
		c.log.Info("closed session: command timeout", "reply", reply)
		return
	}
	c.log.Info("refused", "command", verbForLog(c.lastVerb), "reply", reply, "code", code)
}

// envelopeForm is "<addr>", as go-smtp writes an address it accepted
// (unquoted), in the form of RFC 5321 4.1.2: the local part quoted when it
// is not a Dot-string (policy.WirePath).
func envelopeForm(path string) string {
	addr, ok := strings.CutPrefix(path, "<")
	if !ok {
		return path
	}
	if addr, ok = strings.CutSuffix(addr, ">"); !ok {
		return path
	}
	return "<" + policy.WirePath(addr) + ">"
}

// connectionLost reports, and logs, go-smtp's answer to a command read
// that failed other than by a timeout or a clean close: "421 4.4.0
// Connection error, sorry" (go-smtp server.go). The client reset the
// connection or broke its TLS: nothing was refused, and no one would read
// the reply, so it is not sent, logged or counted as a refusal.
func (c *guardConn) connectionLost(code int, line string) bool {
	if code != 421 || c.readErr == nil || !strings.HasPrefix(line, "421 4.4.0 ") {
		return false
	}
	c.log.Info("connection lost", "command", verbForLog(c.lastVerb), "phase", replyPhase(c.lastVerb),
		"in_transaction", c.inTxn, "err", c.readErr)
	return true
}

// sequenceVerbs are the commands for which go-smtp's 502 5.5.1 means "bad
// sequence of commands".
var sequenceVerbs = map[string]bool{"MAIL": true, "RCPT": true, "DATA": true, "AUTH": true}

// write sends out (the wire form of p) and tracks the reply.
func (c *guardConn) write(p, out []byte, code int, line string) (int, error) {
	if d := c.srv.cfg.Limits.CommandTimeout.D(); d > 0 {
		_ = c.inner.SetWriteDeadline(time.Now().Add(d))
	}
	if _, err := c.inner.Write(wireSafe(out)); err != nil {
		return 0, err
	}
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		// One log line per reply line: a rewrite may have made two
		// (PIPELINING followed by our STARTTLS).
		for _, l := range strings.Split(strings.TrimRight(string(out), "\r\n"), "\r\n") {
			c.logReply(code, l)
		}
	}
	c.afterReply(code, line)
	return len(p), nil
}

// logReply logs a reply line at debug level. The 250 that accepts a
// message names its queue ID, so the line carries queue_id= too, as every
// line about a message does.
func (c *guardConn) logReply(code int, line string) {
	if code == 250 && strings.HasSuffix(line, " "+acceptedText) {
		if f := strings.Fields(line); len(f) > 2 {
			c.log.Debug("reply", "queue_id", f[2], "line", line)
			return
		}
	}
	c.log.Debug("reply", "line", line)
}

func prefix(s string, n int) string {
	if len(s) < n {
		return s
	}
	return s[:n]
}

// afterReply tracks the dialog state that replies reveal.
func (c *guardConn) afterReply(code int, line string) {
	last := len(line) > 3 && line[3] == ' '
	if last {
		// Every 4xx and 5xx reply is counted once: by the code path that
		// decided it (countRefusal), else here, by the command it answers.
		if code >= 400 && code <= 599 && !c.refusalCounted {
			metrics.Active().Refused(replyPhase(c.lastVerb), code)
		}
		c.refusalCounted = false
	}
	switch {
	case code == 334:
		c.saslNext = true
	case code == 354 && c.lastVerb == "DATA":
		c.dataMode = true
		c.dataState = dsBeginLine
		c.dataCheck = lineChecker{w: io.Discard}
		// Bytes already here came before our 354: RFC 2920 3.1 forbids that.
		c.earlyData = c.br.Buffered() > 0 || len(c.pend) > 0
	case code == 235:
		c.authed = true
	case (code == 421 || code == 521) && last:
		// RFC 5321 3.8: 421 says the service is closing the channel, and
		// RFC 7504 521 that this host accepts no mail; a rule's reply may
		// say either, so the session ends here (as Postfix's access(5)).
		c.closing = true
	case code >= 500 && code <= 599 && last:
		// Every permanent refusal counts, a refused recipient or sender
		// as much as a command not understood, as Postfix's
		// smtpd_hard_error_limit counts its errors: a client probing
		// addresses (harvesting: 550 user unknown; looking for a relay:
		// 554) is cut off like one sending junk. Temporary replies do
		// not: "452 too many recipients" asks for a later transaction
		// (RFC 5321 4.5.3.1.10), and a greylisting 451 to each of many
		// recipients is no misbehaviour. A message accepted starts the
		// count again ("errors without delivering mail").
		if c.countBad() {
			c.closing = true
			c.reply(replyTooManyBad(c.srv.cfg.Hostname))
		}
	case code == 250 && last && strings.HasSuffix(strings.TrimRight(line, "\r\n"), " "+acceptedText):
		c.bad = 0
	}
}

// countBad counts one error toward limits.max_bad_commands and reports
// whether the client is now past it (logged here); the caller then ends
// the session with replyTooManyBad.
func (c *guardConn) countBad() bool {
	c.bad++
	max := c.srv.cfg.Limits.MaxBadCommands
	if max > 0 && c.bad > max && !c.closing {
		c.log.Info("refused", "reason", "too many errors", "count", c.bad)
		return true
	}
	return false
}

// helloLine rewrites the first line of go-smtp's reply to EHLO or HELO,
// "250-Hello CLIENT" (or "250 2.0.0 Hello CLIENT"), to the form RFC 5321
// 4.1.1.1 requires, "250-OURNAME Hello CLIENT": a client reads the
// server's name there, and Postfix and we detect a mail loop by it ("mail
// for X loops back to myself"). No enhanced code: RFC 2034 keeps them out
// of EHLO and HELO replies.
func (c *guardConn) helloLine(line string) (string, bool) {
	if len(line) < 4 {
		return "", false
	}
	sep, body := line[3:4], strings.TrimPrefix(line[4:], "2.0.0 ")
	rest, ok := strings.CutPrefix(body, "Hello ")
	if !ok {
		return "", false
	}
	// The client's name as it gave it, but a reply is printable ASCII
	// (RFC 5321 4.2: %d09 / %d32-126): no terminal escapes, no 8-bit.
	name := strings.Map(func(r rune) rune {
		if r < '!' || r > '~' {
			return '?'
		}
		return r
	}, strings.TrimRight(rest, "\r\n"))
	return "250" + sep + c.srv.cfg.Hostname + " Hello " + name + "\r\n", true
}

// ehloLine adapts one line of go-smtp's EHLO reply: SIZE carries our limit,
// CHUNKING is not offered (BDAT bypasses the end-of-data checks), STARTTLS
// is offered by us because the guard, not go-smtp, owns TLS.
func (c *guardConn) ehloLine(line string) (string, bool) {
	if len(line) < 4 {
		return line, true
	}
	sep, kw := line[3:4], strings.TrimRight(line[4:], "\r\n")
	switch strings.ToUpper(strings.Fields(kw + " x")[0]) {
	case "CHUNKING":
		return "", false
	case "SIZE":
		if max := c.srv.cfg.Limits.MaxMessageBytes; max > 0 {
			return "250" + sep + "SIZE " + strconv.FormatInt(max, 10) + "\r\n", true
		}
	case "PIPELINING":
		if c.offerSTARTTLS() {
			return line + "250-STARTTLS\r\n", true
		}
	}
	return line, true
}

func (c *guardConn) offerSTARTTLS() bool {
	return c.tlsState == nil && c.info.listener.TLS == "starttls" && c.srv.tls != nil
}

// startTLS runs STARTTLS (RFC 3207) on behalf of go-smtp.
func (c *guardConn) startTLS(arg string) {
	switch {
	case arg != "":
		c.reply(replySyntaxNoParams)
		return
	case c.tlsState != nil:
		c.reply(replyAlreadyTLS)
		return
	case !c.offerSTARTTLS():
		c.reply(replyNotImplemented)
		return
	case c.authed:
		// go-smtp keeps its AUTH state across our transport switch.
		c.reply(replyBadSequence)
		return
	}
	c.reply(replyReadyTLS)
	if n := c.br.Buffered() + len(c.pend); n > 0 {
		// RFC 3207 4.2 / CVE-2011-0411: never act on plaintext sent
		// together with STARTTLS.
		c.log.Warn("discarded plaintext sent after STARTTLS", "bytes", n)
	}
	c.pend = nil
	_, _ = c.br.Discard(c.br.Buffered())
	if err := c.handshake(tlsServer(c)); err != nil {
		c.log.Info("tls handshake failed", "err", err)
		c.closing = true
		return
	}
	c.br = bufio.NewReaderSize(c.inner, readBufSize)
	c.needEHLO = true
	if c.onTLS != nil {
		c.onTLS()
	}
}

func tlsServer(c *guardConn) *tls.Conn { return tls.Server(c.raw, c.srv.tls) }

// handshake completes a server-side TLS handshake and records the state.
func (c *guardConn) handshake(tc *tls.Conn) error {
	if d := c.srv.cfg.Limits.CommandTimeout.D(); d > 0 {
		_ = c.raw.SetDeadline(time.Now().Add(d))
	}
	if err := tc.Handshake(); err != nil {
		return err
	}
	st := tc.ConnectionState()
	c.tlsState = &st
	c.inner = tc
	c.log.Info("tls", "version", tls.VersionName(st.Version), "cipher", tls.CipherSuiteName(st.CipherSuite))
	return nil
}

// Close closes the connection once and frees its slots.
func (c *guardConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.inner.Close()
		if c.release != nil {
			c.release()
		}
		c.log.Info("disconnect")
	})
	return err
}

// forceClose ends the session from another goroutine when the shutdown
// grace is over: its next read (at once, if it is waiting for the client)
// answers 421 4.3.2 and closes, in DATA too (RFC 5321 3.8: a server that
// must shut down SHOULD say 421 first). A session busy elsewhere (a
// stage, a commit) is cut by kill.
func (c *guardConn) forceClose() {
	c.forced.Store(true)
	c.wake()
}

// kill closes the socket from another goroutine; the session's goroutine
// then unwinds and calls Close.
func (c *guardConn) kill() { _ = c.raw.Close() }

func (c *guardConn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *guardConn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *guardConn) SetDeadline(t time.Time) error      { return c.inner.SetDeadline(t) }
func (c *guardConn) SetReadDeadline(t time.Time) error  { return c.inner.SetReadDeadline(t) }
func (c *guardConn) SetWriteDeadline(t time.Time) error { return c.inner.SetWriteDeadline(t) }
