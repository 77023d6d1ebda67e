package mime

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// UTF-7 (RFC 2152) is a charset a sender may still name in an encoded-word
// or an RFC 2231 value, and mail clients that decode it (Thunderbird,
// Outlook) show filename*=utf-7''invoice+AC4-js as invoice.js. The
// encoding packages have no UTF-7 (WHATWG dropped it), so header values
// are decoded here; a body in UTF-7 stays charset.unknown, its words
// unread, as before.

// isUTF7 reports a label naming UTF-7.
func isUTF7(charset string) bool {
	l := strings.ToLower(strings.Trim(strings.TrimSpace(charset), `"'`))
	return l == "utf-7" || l == "utf7" || l == "unicode-1-1-utf-7" || l == "csunicode11utf7" || l == "x-unicode20utf7"
}

// decodeUTF7 decodes RFC 2152 UTF-7: bytes stand for themselves, except
// that '+' starts a run of modified base64 (no padding) holding UTF-16
// code units, ended by any byte outside that alphabet, a '-' there being
// absorbed; "+-" is '+'. Bits left over at the end of a run are dropped,
// a lone surrogate and a byte past 0x7F become U+FFFD: the result is
// UTF-8, and no longer than three times the input.
func decodeUTF7(b []byte) string {
	var out strings.Builder
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= 0x80:
			out.WriteRune(utf8.RuneError)
			continue
		case c != '+':
			out.WriteByte(c)
			continue
		case i+1 < len(b) && b[i+1] == '-':
			out.WriteByte('+')
			i++
			continue
		}
		var units []uint16
		var acc uint32
		bits := 0
		for i++; i < len(b); i++ {
			v := base64Value(b[i])
			if v < 0 {
				if b[i] != '-' {
					i-- // the byte after the run is text
				}
				break
			}
			acc = acc<<6 | uint32(v)
			if bits += 6; bits >= 16 {
				bits -= 16
				units = append(units, uint16(acc>>bits))
				acc &= 1<<bits - 1
			}
		}
		out.WriteString(string(utf16.Decode(units)))
	}
	return out.String()
}

// base64Value is c's value in the base64 alphabet (RFC 4648 4), or -1.
func base64Value(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return -1
}

// headerText decodes the bytes of an encoded-word or an RFC 2231 value
// in their charset, UTF-7 among them.
func (w *walker) headerText(b []byte, charset string) string {
	if isUTF7(charset) {
		return decodeUTF7(b)
	}
	return w.toUTF8(b, charset)
}
