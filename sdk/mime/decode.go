package mime

import (
	"encoding/base64"
	"strconv"
)

// base64Alphabet marks the bytes of RFC 2045 6.8's alphabet.
var base64Alphabet = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = true
	}
	return t
}()

// decodeBase64 decodes leniently: line breaks and white space are skipped,
// other bytes outside the alphabet are skipped and reported (RFC 2045 6.8
// says to ignore them), and padding anywhere ends a group.
func decodeBase64(in []byte) (out []byte, bad bool) {
	clean := make([]byte, 0, len(in))
	for _, c := range in {
		switch {
		case base64Alphabet[c]:
			clean = append(clean, c)
		case c == '=' || c == '\r' || c == '\n' || c == ' ' || c == '\t':
		default:
			bad = true
		}
	}
	if len(clean)%4 == 1 {
		clean, bad = clean[:len(clean)-1], true
	}
	out = make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, err := base64.RawStdEncoding.Decode(out, clean)
	if err != nil {
		bad = true
	}
	return out[:n], bad
}

// decodeQP decodes quoted-printable (RFC 2045 6.7) leniently: a malformed
// escape is kept as it is and reported.
func decodeQP(in []byte) (out []byte, bad bool) {
	out = make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		switch {
		case i+1 < len(in) && in[i+1] == '\n':
			i++
		case i+2 < len(in) && in[i+1] == '\r' && in[i+2] == '\n':
			i += 2
		case i+2 < len(in) && isHex(in[i+1]) && isHex(in[i+2]):
			v, _ := strconv.ParseUint(string(in[i+1:i+3]), 16, 8)
			out = append(out, byte(v))
			i += 2
		case i+1 == len(in):
		default:
			out = append(out, c)
			bad = true
		}
	}
	return out, bad
}
