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
// says to ignore them), and padding that ends a quantum early ends it
// there. RFC 2045 6.8 puts padding only at the end of the data, but
// encoders that encode line by line pad every line, and mail clients
// (Thunderbird, GNU base64 -d -i) decode each padded quantum and go on:
// dropping the padding instead would read the rest out of step, as noise.
func decodeBase64(in []byte) (out []byte, bad bool) {
	out = make([]byte, 0, base64.RawStdEncoding.DecodedLen(len(in)))
	clean := make([]byte, 0, len(in))
	flush := func() {
		if len(clean)%4 == 1 { // six bits: not a byte
			clean, bad = clean[:len(clean)-1], true
		}
		n, err := base64.RawStdEncoding.Decode(out[len(out):cap(out)], clean)
		if err != nil {
			bad = true
		}
		out, clean = out[:len(out)+n], clean[:0]
	}
	for _, c := range in {
		switch {
		case base64Alphabet[c]:
			clean = append(clean, c)
		case c == '=':
			if len(clean)%4 != 0 {
				flush()
			}
		case c == '\r' || c == '\n' || c == ' ' || c == '\t':
		default:
			bad = true
		}
	}
	flush()
	return out, bad
}

// base64Len is the length decodeBase64 decodes in to, and whether it
// would report it bad, without decoding it.
func base64Len(in []byte) (n int, bad bool) {
	clean := 0
	flush := func() {
		if clean%4 == 1 {
			clean, bad = clean-1, true
		}
		// Whole groups of the alphabet decode without error: 3 bytes for
		// 4 characters, and 1 or 2 for a last 2 or 3.
		n, clean = n+base64.RawStdEncoding.DecodedLen(clean), 0
	}
	for _, c := range in {
		switch {
		case base64Alphabet[c]:
			clean++
		case c == '=':
			if clean%4 != 0 {
				flush()
			}
		case c == '\r' || c == '\n' || c == ' ' || c == '\t':
		default:
			bad = true
		}
	}
	flush()
	return n, bad
}

// decodeQP decodes quoted-printable (RFC 2045 6.7) leniently: a malformed
// escape is kept as it is and reported.
func decodeQP(in []byte) (out []byte, bad bool) {
	s := qpSink{out: make([]byte, 0, len(in))}
	bad = s.decode(in)
	return s.out, bad
}

// qpLen is the length decodeQP decodes in to, and whether it would report
// it bad, without keeping the bytes.
func qpLen(in []byte) (n int, bad bool) {
	s := qpSink{count: true}
	bad = s.decode(in)
	return s.n, bad
}

// qpSink takes decoded quoted-printable bytes, or only counts them.
type qpSink struct {
	out   []byte
	n     int
	count bool
}

func (s *qpSink) put(c byte) {
	s.n++
	if !s.count {
		s.out = append(s.out, c)
	}
}

func (s *qpSink) decode(in []byte) (bad bool) {
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '=' {
			s.put(c)
			continue
		}
		switch {
		case i+1 < len(in) && in[i+1] == '\n':
			i++
		case i+2 < len(in) && in[i+1] == '\r' && in[i+2] == '\n':
			i += 2
		case i+2 < len(in) && isHex(in[i+1]) && isHex(in[i+2]):
			v, _ := strconv.ParseUint(string(in[i+1:i+3]), 16, 8)
			s.put(byte(v))
			i += 2
		case i+1 == len(in):
		default:
			s.put(c)
			bad = true
		}
	}
	return bad
}
