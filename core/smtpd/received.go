package smtpd

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/core/policy"
)

// receivedHeader is our trace field (RFC 5321 4.4, with the WITH protocol
// names of RFC 3848: ESMTP, ESMTPS with TLS, ESMTPA/ESMTPSA authenticated;
// and of RFC 6531 4.3 for a transaction with SMTPUTF8: UTF8SMTP, UTF8SMTPS,
// UTF8SMTPA, UTF8SMTPSA, as Postfix writes them).
// "for" appears only with one recipient: listing several would disclose
// Bcc recipients to each other.
func (s *session) receivedHeader(id string) string {
	gc := s.gc
	host := gc.info.hostname
	if host == "" {
		host = "unknown"
	}
	proto := "ESMTP"
	if s.mailOpts.UTF8 {
		proto = "UTF8SMTP"
	}
	if gc.tlsState != nil {
		proto += "S"
	}
	if s.authed {
		proto += "A"
	}
	if !gc.esmtp && gc.tlsState == nil && !s.authed {
		proto = "SMTP" // a client that said HELO (RFC 5321 4.4, RFC 3848)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s (%s [%s])\r\n", heloText(s.sc.Hostname()), host, addrLiteral(gc))
	if st := gc.tlsState; st != nil {
		// As Postfix does: lets a reader see how each hop was protected.
		fmt.Fprintf(&b, "\t(using %s with cipher %s)\r\n", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	}
	fmt.Fprintf(&b, "\tby %s (Portcullis) with %s id %s", gc.srv.cfg.Hostname, proto, id)
	if len(s.rcpts) == 1 {
		// Quoted as on the wire (RFC 5321 4.4: "for" Mailbox): kept
		// unquoted, "bob>; Mon, 1 Jan 2001 (x"@example.test wrote a forged
		// date into the trace.
		fmt.Fprintf(&b, "\r\n\tfor <%s>", sanitize(policy.WirePath(s.rcpts[0].Addr)))
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", s.gc.srv.d.Now().Format(time.RFC1123Z))
	return b.String()
}

// addrLiteral is the client address in RFC 5321 4.1.3 form (IPv6: tagged).
func addrLiteral(gc *guardConn) string {
	ip := gc.info.ip
	if ip.Is6() && !ip.Is4In6() {
		return "IPv6:" + ip.String()
	}
	return ip.String()
}

// heloText keeps the client's HELO argument from breaking the header.
func heloText(h string) string {
	h = strings.Map(func(r rune) rune {
		switch {
		case r <= ' ' || r == 127 || r == '(' || r == ')' || r == ';' || r == '"' || r == '\\':
			// A comment, a quoted string or a quoted pair would swallow
			// the rest of the field in an RFC 5322 reader.
			return -1
		case r > '~':
			return '?' // 8-bit, or not UTF-8 at all: a header of a 7-bit message has none
		}
		return r
	}, h)
	if h == "" {
		return "unknown"
	}
	return h
}
