package smtpd

import "strings"

// rewriteReply maps a line of go-smtp's reply to the one RFC 5321, its
// extensions and CONTRACT.md ask for, and reports whether it changed it.
// go-smtp's code, the command it answers and its text tell which of its
// replies a line is; at most one rewrite applies to a line. (The EHLO
// keywords are Write's ehloLine, which may drop a line.)
func (c *guardConn) rewriteReply(code int, line string) (int, string, bool) {
	switch code {
	case 220:
		if c.lastVerb == "" {
			l, ok := greetingLine(line)
			return code, l, ok
		}
	case 250:
		l, ok := c.acceptedLine(line)
		return code, l, ok
	case 502:
		if sequenceVerbs[c.lastVerb] && strings.HasPrefix(line, "502 5.5.1 ") {
			// go-smtp answers MAIL before EHLO, RCPT before MAIL and DATA
			// before RCPT with 502 (not implemented); RFC 5321 4.3.2 says 503.
			return 503, "503" + line[3:], true
		}
		if c.lastVerb == "AUTH" && strings.HasPrefix(line, "502 5.5.4 ") {
			// go-smtp's answer to AUTH without a mechanism: a syntax
			// error in the parameters (RFC 5321 4.2.3), not a command
			// that is not implemented.
			return 501, "501" + line[3:], true
		}
	case 500, 504:
		if c.lastVerb == "MAIL" || c.lastVerb == "RCPT" {
			if code, l, ok := paramRefusal(line); ok {
				return code, l, true
			}
		}
		if code == 500 && strings.HasPrefix(line, "500 5.4.0 Too long line") {
			// go-smtp's answer to a command over max_line_length, then it
			// closes. X.4.0 is a routing status (RFC 3463 3.5); a line too
			// long is a syntax error (RFC 5321 4.2.2, RFC 3463 X.5.2).
			return code, "500 5.5.2 Line too long, closing connection\r\n", true
		}
	case 235, 454:
		if c.lastVerb == "AUTH" {
			return authReply(code, line)
		}
	}
	return code, line, false
}

// greetingLine shortens go-smtp's greeting, "220 NAME ESMTP Service
// Ready", to CONTRACT.md's "220 NAME ESMTP".
func greetingLine(line string) (string, bool) {
	if !strings.HasSuffix(line, " ESMTP Service Ready\r\n") {
		return "", false
	}
	return strings.TrimSuffix(line, " Service Ready\r\n") + "\r\n", true
}

// acceptedLine rewrites go-smtp's 250 replies: the first line of the one
// to EHLO and HELO (helloLine), and its chatty 2.0.0 replies to MAIL and
// RCPT. RFC 3463 has codes for those: X.1.0 (sender) and X.1.5
// (destination valid). go-smtp names the address unquoted ("john
// smith"@x as <john smith@x>); the reply names it in its envelope form.
func (c *guardConn) acceptedLine(line string) (string, bool) {
	switch c.lastVerb {
	case "EHLO", "HELO":
		return c.helloLine(line)
	case "MAIL":
		if rest, ok := strings.CutPrefix(line, "250 2.0.0 Roger, accepting mail from "); ok {
			return "250 2.1.0 Sender " + envelopeForm(strings.TrimRight(rest, "\r\n")) + " OK\r\n", true
		}
	case "RCPT":
		if rest, ok := strings.CutPrefix(line, "250 2.0.0 I'll make sure "); ok {
			return "250 2.1.5 Recipient " + envelopeForm(strings.TrimSuffix(strings.TrimRight(rest, "\r\n"), " gets this")) + " OK\r\n", true
		}
	}
	return "", false
}

// paramRefusal rewrites go-smtp's refusal of a MAIL or RCPT parameter.
// go-smtp answers a parameter it does not know with 500 and one it knows
// but was not offered (NOTIFY, RET...) with 504; RFC 5321 4.2.3 and
// 4.1.1.11 have 555 for both, and a malformed AUTH= value is a syntax
// error in parameters, 501.
func paramRefusal(line string) (int, string, bool) {
	if !strings.HasPrefix(line[3:], " 5.5.4 ") {
		return 0, "", false
	}
	switch text := line[len("500 5.5.4 "):]; {
	case strings.HasPrefix(text, "Unknown MAIL FROM argument"), strings.HasPrefix(text, "Unknown RCPT TO argument"),
		strings.HasSuffix(strings.TrimRight(text, "\r\n"), " is not implemented"):
		return 555, "555" + line[3:], true
	case strings.HasPrefix(text, "Malformed AUTH parameter"):
		return 501, "501" + line[3:], true
	}
	return 0, "", false
}

// authReply rewrites go-smtp's replies to AUTH to the codes of RFC 4954.
func authReply(code int, line string) (int, string, bool) {
	if code == 235 && strings.HasPrefix(line, "235 2.0.0 ") {
		// RFC 4954 6: a successful AUTH is 235 2.7.0.
		return code, "235 2.7.0 " + line[len("235 2.0.0 "):], true
	}
	if code == 454 && strings.HasPrefix(line, "454 4.7.0 Invalid base64 data") {
		// go-smtp's answer to a response that is not base64; RFC 4954 4
		// makes it a permanent syntax error, 501 5.5.2.
		return 501, replyAuthBadBase64 + "\r\n", true
	}
	return code, line, false
}
