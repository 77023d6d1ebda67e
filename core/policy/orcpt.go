package policy

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The DSN ORCPT parameter (RFC 3461 4.2) names a recipient as the client
// first gave it: "type;address", the address encoded for its type. The
// queue keeps the type in lower case and the address decoded.
//
// Two types are in use: rfc822, whose address is ASCII in xtext (RFC 3461
// 4: '+', '=' and bytes outside 33-126 as +XX), and utf-8 (RFC 6533 3),
// whose address may hold any Unicode, in utf-8-addr-xtext (the same
// specials and every non-ASCII character as \x{HEX}, safe with or
// without SMTPUTF8).

// ORCPTParam returns the ORCPT parameter's value for an original recipient
// kept as "type;address" (decoded), and false for one that is not. An
// rfc822 address holding UTF-8, which Postfix sends as the xtext of its
// bytes, goes on as utf-8: rfc822 xtext is for ASCII (RFC 3461 4.2), and a
// strict next hop (go-smtp among them) refuses the whole RCPT over it.
func ORCPTParam(stored string) (string, bool) {
	typ, addr, ok := strings.Cut(stored, ";")
	if !ok || addr == "" {
		return "", false
	}
	switch {
	case typ == "utf-8", typ == "rfc822" && !isASCIIString(addr):
		if !utf8.ValidString(addr) {
			return "", false
		}
		return "utf-8;" + utf8AddrXtext(addr), true
	case typ == "rfc822":
		return typ + ";" + Xtext(addr), true
	}
	return "", false // go-smtp takes no other type (RFC 3461 4.2's registry)
}

// UTF8ORCPT rewrites an ORCPT value of type rfc822 whose xtext decodes to
// UTF-8 beyond ASCII ("rfc822;b+C3+B8b@example.test", what Postfix sends
// for any recipient of SMTPUTF8 mail) as the utf-8 type RFC 6533 gives
// such an address ("utf-8;b\x{F8}b@example.test"). go-smtp refuses the
// first form with "501 5.5.4 Malformed ORCPT parameter value", and a
// client that sent it bounces the mail, though the parameter is only
// informational. Any other value is left to go-smtp's checks.
func UTF8ORCPT(value string) (string, bool) {
	typ, enc, ok := strings.Cut(value, ";")
	if !ok || !strings.EqualFold(typ, "rfc822") {
		return "", false
	}
	addr, ok := decodeXtext(enc)
	if !ok || isASCIIString(addr) || !utf8.ValidString(addr) {
		return "", false
	}
	return "utf-8;" + utf8AddrXtext(addr), true
}

// Xtext encodes s as RFC 3461 4 xtext: '+', '=' and bytes outside 33..126
// as +XX.
func Xtext(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c > 126 || c == '+' || c == '=' {
			b.WriteByte('+')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// decodeXtext decodes RFC 3461 xtext; false for a '+' not followed by two
// upper-case hex digits.
func decodeXtext(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '+' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, ok1 := upperHex(s[i+1])
		lo, ok2 := upperHex(s[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), true
}

func upperHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// utf8AddrXtext encodes s as RFC 6533 3 utf-8-addr-xtext: QCHAR (printable
// ASCII but '\', '+' and '=') as it is, anything else as \x{HEXPOINT},
// upper case, two digits below U+0100 and no leading zero above.
func utf8AddrXtext(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r > ' ' && r < 0x7f && r != '\\' && r != '+' && r != '=' {
			b.WriteRune(r)
			continue
		}
		if r < 0x100 {
			fmt.Fprintf(&b, `\x{%02X}`, r)
		} else {
			fmt.Fprintf(&b, `\x{%X}`, r)
		}
	}
	return b.String()
}

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
