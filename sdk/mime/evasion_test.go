package mime

import (
	"strings"
	"testing"
)

// TestHiddenAttachments states the facts hidden_attachments.golden holds:
// each part is a file a mail client opens, so the walker must see it.
func TestHiddenAttachments(t *testing.T) {
	m := parseFile(t, "hidden_attachments")
	want := []struct{ filename, alt, body, text string }{
		{"a.js", "", "WScript.Echo(1)", ""},
		{"run.vbs", "", "MsgBox 1\n", ""},
		{"b.txt", "b.hta", "<script>x</script>", "<script>x</script>"},
		{"", "", "", "未承諾広告です"},
	}
	if len(m.Parts) != len(want) {
		t.Fatalf("%d parts, want %d", len(m.Parts), len(want))
	}
	for i, w := range want {
		p := m.Parts[i]
		if p.Filename != w.filename || p.AltFilename != w.alt || string(p.Body) != w.body || strings.TrimSpace(p.Text) != w.text {
			t.Errorf("part %s: filename %q alt %q body %q text %q, want %+v", p.Path, p.Filename, p.AltFilename, p.Body, p.Text, w)
		}
	}
	if len(m.Findings) != 0 {
		t.Errorf("unexpected findings %v", m.Findings)
	}
}

func TestTransferEncodings(t *testing.T) {
	hello := "-:&5L;&\\L('=O<FQD\"@``\r\n`\r\n" // "hello, world\n", uuencode(1)
	tests := []struct{ name, head, body, filename, want string }{
		{"x-uuencode", "Content-Transfer-Encoding: x-uuencode", "begin 644 hello.txt\r\n" + hello + "end\r\n", "hello.txt", "hello, world\n"},
		{"uuencode without a begin line", "Content-Transfer-Encoding: UUENCODE", hello, "", "hello, world\n"},
		{"x-uue keeps the part's own name", "Content-Type: application/octet-stream; name=x.bin\r\nContent-Transfer-Encoding: x-uue", "begin 600 other.txt\r\n" + hello + "end\r\n", "x.bin", "hello, world\n"},
		{"space before the colon", "Content-Transfer-Encoding : base64", b64("hello, world\n"), "", "hello, world\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := "Subject: x\r\nContent-Type: application/octet-stream\r\n" + tc.head + "\r\n\r\n" + tc.body
			if strings.Contains(tc.head, "Content-Type") {
				msg = "Subject: x\r\n" + tc.head + "\r\n\r\n" + tc.body
			}
			m := ParseBytes([]byte(msg), Limits{})
			if len(m.Parts) != 1 || string(m.Parts[0].Body) != tc.want || m.Parts[0].Filename != tc.filename {
				t.Fatalf("parts %+v, want one named %q holding %q", m.Parts, tc.filename, tc.want)
			}
			if len(m.Findings) != 0 {
				t.Errorf("unexpected findings %v", m.Findings)
			}
		})
	}
}

// TestISO2022JPVariants: designations beyond RFC 1468 that Japanese mailers
// send (ISO-2022-JP-1/-3/-2004, CP50222) must not turn the text to noise.
func TestISO2022JPVariants(t *testing.T) {
	ad := enc(jaJIS, "未承諾広告") // ESC $ B ... ESC ( B
	tests := []struct{ name, in, label, want string }{
		{"ESC $ ( B", strings.ReplaceAll(ad, "\x1b$B", "\x1b$(B"), "iso-2022-jp", "未承諾広告"},
		{"JIS X 0213 plane 1 (ISO-2022-JP-2004)", strings.ReplaceAll(ad, "\x1b$B", "\x1b$(Q"), "iso-2022-jp-2004", "未承諾広告"},
		{"JIS X 0213 plane 1 (ISO-2022-JP-3)", strings.ReplaceAll(ad, "\x1b$B", "\x1b$(O"), "iso-2022-jp-3", "未承諾広告"},
		{"JIS X 0213 unlabelled", strings.ReplaceAll(ad, "\x1b$B", "\x1b$(Q"), "", "未承諾広告"},
		{"JIS X 0212 unlabelled", "\x1b$(D0!\x1b(B", "", "丂"},
		{"CP50222 SO/SI katakana", "\x1b$B%+\x1b(B \x0e6<^I\x0f!", "iso-2022-jp", "カ ｶｼﾞﾉ!"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, used := ToUTF8([]byte(tc.in), tc.label); got != tc.want {
				t.Errorf("ToUTF8 = %q (%s), want %q", got, used, tc.want)
			}
			if got := DecodeHeader("=?" + orASCII(tc.label) + "?B?" + b64(tc.in) + "?="); tc.label != "" && got != tc.want {
				t.Errorf("DecodeHeader = %q, want %q", got, tc.want)
			}
		})
	}
}
