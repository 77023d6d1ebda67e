package mime

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// yEncode writes a yEnc 1.3 block as an encoder does: lines of at most
// 128 characters, NUL, LF, CR and '=' escaped, never split from their
// escape.
func yEncode(name string, data []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "=ybegin line=128 size=%d name=%s\r\n", len(data), name)
	n := 0
	for _, c := range data {
		o := c + 42
		switch o {
		case 0, '\n', '\r', '=':
			b.WriteByte('=')
			o += 64
			n++
		}
		b.WriteByte(o)
		if n++; n >= 128 {
			b.WriteString("\r\n")
			n = 0
		}
	}
	fmt.Fprintf(&b, "\r\n=yend size=%d\r\n", len(data))
	return b.Bytes()
}

// uuEncode writes a file as POSIX uuencode does: lines of 45 bytes, a
// zero sextet written as '`', an empty line and "end" to close.
func uuEncode(name string, data []byte) []byte {
	char := func(v byte) byte {
		if v &= 63; v == 0 {
			return '`'
		}
		return ' ' + v
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "begin 644 %s\r\n", name)
	for len(data) > 0 {
		n := min(len(data), 45)
		b.WriteByte(char(byte(n)))
		for i := 0; i < n; i += 3 {
			var g [3]byte
			copy(g[:], data[i:n])
			b.Write([]byte{char(g[0] >> 2), char(g[0]<<4 | g[1]>>4), char(g[1]<<2 | g[2]>>6), char(g[2])})
		}
		b.WriteString("\r\n")
		data = data[n:]
	}
	b.WriteString("`\r\nend\r\n")
	return b.Bytes()
}

// FuzzTextFiles: a file yEnc-encoded or uuencoded in a text part as an
// encoder writes it comes back whole under its name, and any text makes
// parts whose bodies, together, are no longer than it.
func FuzzTextFiles(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, name string, text []byte) {
		name = strings.Join(strings.Fields(name), " ")
		if name != "" && utf8.ValidString(name) && !strings.ContainsAny(name, "\x00\x1b") {
			for _, tt := range []struct {
				kind string
				enc  func(string, []byte) []byte
				dec  func([]byte) (string, []byte, []byte)
			}{{"yEnc", yEncode, decodeYEnc}, {"uuencode", uuEncode, decodeUU}} {
				block := tt.enc(name, data)
				n, got, rest := tt.dec(block)
				if n != name || !bytes.Equal(got, data) || len(rest) != 0 {
					t.Fatalf("%s of %q named %q decodes to %q named %q, rest %q", tt.kind, data, name, got, n, rest)
				}
				m := ParseBytes(append([]byte("Content-Type: text/plain\r\n\r\nSee the file:\r\n\r\n"), block...), Limits{})
				if len(m.Parts) != 2 || m.Parts[1].Filename != name || !bytes.Equal(m.Parts[1].Body, data) {
					t.Fatalf("%s of %q named %q in text: %d parts", tt.kind, data, name, len(m.Parts))
				}
			}
		}
		lim := Limits{MaxParts: 50, MaxPartBytes: 1 << 16, MaxTotalBytes: 1 << 18}
		m := ParseBytes(append([]byte("Content-Type: text/plain\r\n\r\n"), text...), lim)
		total := 0
		for _, p := range m.Parts[1:] {
			total += len(p.Body)
			if !utf8.ValidString(p.Filename) {
				t.Fatalf("part %s: name %q not UTF-8", p.Path, p.Filename)
			}
		}
		if total > len(text) {
			t.Fatalf("files of %d bytes out of %d of text", total, len(text))
		}
	})
}
