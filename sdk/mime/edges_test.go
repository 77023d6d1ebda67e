package mime

import (
	"slices"
	"strings"
	"testing"
)

// rfc822Chain is a message holding n messages each inside the one before.
func rfc822Chain(n int) string {
	return strings.Repeat("Content-Type: message/rfc822\r\n\r\n", n) + "Content-Type: text/plain\r\n\r\ninnermost\r\n"
}

// TestRFC822Limits: a chain of attached messages, with no multipart in
// it, is bounded in depth and in parts as a chain of multiparts is.
func TestRFC822Limits(t *testing.T) {
	tests := []struct {
		name    string
		chain   int
		lim     Limits
		finding string
		parts   int
	}{
		{"depth", 10, Limits{MaxDepth: 4}, FindDepthLimit, 0},
		{"depth ok", 4, Limits{MaxDepth: 4}, "", 1},
		{"parts", 10, Limits{MaxParts: 3}, FindPartsLimit, 0},
		{"parts ok", 2, Limits{MaxParts: 3}, "", 1},
		{"parts one over", 3, Limits{MaxParts: 3}, FindPartsLimit, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := ParseBytes([]byte(rfc822Chain(tc.chain)), tc.lim)
			if tc.finding != "" && !slices.Contains(m.Findings, tc.finding) {
				t.Errorf("findings %v lack %s", m.Findings, tc.finding)
			}
			if tc.finding == "" && len(m.Findings) > 0 {
				t.Errorf("unexpected findings %v", m.Findings)
			}
			if len(m.Parts) != tc.parts {
				t.Errorf("%d parts, want %d", len(m.Parts), tc.parts)
			}
		})
	}
}

// TestPartBytesBound: a part of exactly MaxPartBytes is whole; one byte
// more is cut.
func TestPartBytesBound(t *testing.T) {
	for _, n := range []int{1000, 1001} {
		m := ParseBytes([]byte("Content-Type: application/octet-stream\r\n\r\n"+strings.Repeat("x", n)), Limits{MaxPartBytes: 1000})
		p := m.Parts[0]
		if cut := n > 1000; p.Truncated != cut || slices.Contains(m.Findings, FindPartTruncated) != cut || len(p.Body) != 1000 {
			t.Errorf("%d bytes: truncated %v, %d kept, findings %v", n, p.Truncated, len(p.Body), m.Findings)
		}
	}
}

// TestDecodedTotalBound: MaxTotalBytes bounds the decoded bytes of all
// parts together, not only the raw message: the text of a part and the
// file uuencoded in it are both kept, and together they are more than the
// message.
func TestDecodedTotalBound(t *testing.T) {
	raw := "Content-Type: text/plain\r\n\r\n" + uuencode("a.bin", strings.Repeat("A", 3000))
	m := ParseBytes([]byte(raw), Limits{MaxTotalBytes: int64(len(raw)) + 10})
	if !slices.Contains(m.Findings, FindTotalLimit) {
		t.Errorf("findings %v lack %s", m.Findings, FindTotalLimit)
	}
	var total int
	for _, p := range m.Parts {
		total += len(p.Text) + len(p.Body)
	}
	if len(m.Parts) != 2 || !m.Parts[1].Truncated || total > len(raw)+10+len(m.Parts[0].Text) {
		t.Errorf("%d parts, %d bytes kept in all", len(m.Parts), total)
	}
}

// TestDelimiterStartsLine: "--boundary" inside a line is text, not a
// delimiter (RFC 2046 5.1.1).
func TestDelimiterStartsLine(t *testing.T) {
	raw := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none x--b\r\nstill one\r\n--b--\r\n"
	m := ParseBytes([]byte(raw), Limits{})
	if len(m.Parts) != 1 || m.Parts[0].Text != "one x--b\r\nstill one" {
		t.Errorf("parts %d, first %q", len(m.Parts), m.Parts[0].Text)
	}
}

// TestQPSoftBreakLF: a soft line break before a bare LF (a message stored
// with Unix line ends) joins the lines, as before CRLF.
func TestQPSoftBreakLF(t *testing.T) {
	for _, in := range []string{"ab=\ncd", "ab=\r\ncd"} {
		if out, bad := decodeQP([]byte(in)); string(out) != "abcd" || bad {
			t.Errorf("decodeQP(%q) = %q, bad %v; want \"abcd\"", in, out, bad)
		}
		if n, bad := qpLen([]byte(in)); n != 4 || bad {
			t.Errorf("qpLen(%q) = %d, bad %v; want 4", in, n, bad)
		}
	}
}

func TestDecodeHeaderWords(t *testing.T) {
	tests := []struct{ name, in, want string }{
		// RFC 2047 6.2 joins adjacent words, but only those of one
		// charset are decoded together.
		{"charsets differ", "=?iso-8859-1?Q?caf=E9?= =?utf-8?Q?_=E2=82=AC?=", "café €"},
		// RFC 2231 5: a language after the charset.
		// RFC 1468: ESC $ @ (JIS C 6226-1978) designates the kanji set as
		// ESC $ B does.
		{"raw JIS ESC $ @", "\x1b$@F|K\\\x1b(B", "日本"},
	}
	for _, tc := range tests {
		if got := DecodeHeader(tc.in); got != tc.want {
			t.Errorf("%s: DecodeHeader(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// TestRFC2231SegmentsOutOfOrder: continuations are joined by their
// number, not in the order written (RFC 2231 3).
func TestRFC2231SegmentsOutOfOrder(t *testing.T) {
	raw := "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*1=\"b.exe\"; filename*0=\"a\"\r\n\r\nx"
	if p := ParseBytes([]byte(raw), Limits{}).Parts[0]; p.Filename != "ab.exe" {
		t.Errorf("filename %q, want ab.exe", p.Filename)
	}
}

// TestJapaneseCharsetLabels: the labels Japanese mailers write are known
// charsets, not charset.unknown.
func TestJapaneseCharsetLabels(t *testing.T) {
	for _, label := range []string{"cp932", "windows-31j", "ms932", "x-sjis", "sjis", "shift-jis", "x-ms-cp932",
		"iso-2022-jp-1", "iso-2022-jp-2", "iso-2022-jp-ms", "cp50220", "cp50221", "csiso2022jp", "x-iso-2022-jp",
		"iso-2022-jp-3", "iso-2022-jp-2004", "x-euc-jp", "eucjp-ms", "euc-jp-ms", "cp51932", "eucjp", "x-euc", "ujis"} {
		name, _, ok := lookup(label)
		if !ok {
			t.Errorf("%s is unknown", label)
			continue
		}
		var e = jaSJIS
		switch {
		case strings.Contains(name, "2022"):
			e = jaJIS
		case strings.Contains(name, "euc"):
			e = jaEUC
		}
		raw := "Content-Type: text/plain; charset=" + label + "\r\n\r\n" + enc(e, "未承諾広告")
		m := ParseBytes([]byte(raw), Limits{})
		if len(m.Findings) > 0 || m.Parts[0].Text != "未承諾広告" {
			t.Errorf("%s: text %q, findings %v", label, m.Parts[0].Text, m.Findings)
		}
	}
}

// TestEncodedWordLanguage: RFC 2231 5 lets an encoded word name its
// language after the charset; the charset is still known.
func TestEncodedWordLanguage(t *testing.T) {
	m := ParseBytes([]byte("Subject: =?utf-8*ja?Q?=E6=97=A5?=\r\n\r\nbody"), Limits{})
	if m.Subject != "日" || len(m.Findings) > 0 {
		t.Errorf("subject %q, findings %v", m.Subject, m.Findings)
	}
}
