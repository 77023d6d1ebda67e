package mime

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
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

// TestBase64PaddedChunks: base64 whose lines (or encoded-words) are each
// padded, as line-by-line encoders write it, decodes chunk by chunk as
// mail clients decode it, not out of step after the first padding.
func TestBase64PaddedChunks(t *testing.T) {
	const text = "未承諾広告のお知らせ。パスワードを確認。"
	tests := []struct {
		name, in, want string
		bad            bool
	}{
		{"two padded lines", "5pyq5om/6A==\r\nq77luoPlkYrjga7jgYrnn6XjgonjgZvjgILjg5Hjgrnjg6/jg7zjg4njgpLnorroqo3jgII=\r\n", text, false},
		{"padded quanta on one line", "QQ==QkM=RA", "ABCD", false},
		{"a padded quantum of one character", "QUJD\r\nR===\r\nQUJD\r\n", "ABCABC", true},
		{"padding after a whole quantum", "QUJD=\r\nQUJD\r\n", "ABCABC", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + tc.in
			m := ParseBytes([]byte(msg), Limits{})
			if m.Parts[0].Text != tc.want {
				t.Errorf("text %q, want %q", m.Parts[0].Text, tc.want)
			}
			if got := len(m.Findings) == 1 && m.Findings[0] == FindBase64Invalid; got != tc.bad || len(m.Findings) > 1 {
				t.Errorf("findings %v, want %s %v", m.Findings, FindBase64Invalid, tc.bad)
			}
			if n, bad := base64Len([]byte(tc.in)); n != len(tc.want) || bad != tc.bad {
				t.Errorf("base64Len = %d, %v; want %d, %v", n, bad, len(tc.want), tc.bad)
			}
		})
	}
	// RFC 2047 "B" words are base64 too.
	if got := DecodeHeader("=?UTF-8?B?44CQ5g==nKrmib/oq74=?="); got != "【未承諾" {
		t.Errorf("DecodeHeader = %q, want 【未承諾", got)
	}
}

// TestFallbackNameFields: Thunderbird names a part from Content-Name, then
// X-Sun-Data-Name, when no filename= or name= parameter does
// (MimeHeaders_get_name), and saves it so: the walker gives the part those
// names too, as its Filename when no parameter names it, else as names
// more to judge.
func TestFallbackNameFields(t *testing.T) {
	const ct = "Content-Type: application/octet-stream\r\n"
	tests := []struct {
		name, head string
		names      []string
	}{
		{"Content-Name", ct + "Content-Disposition: attachment\r\nContent-Name: invoice.js", []string{"invoice.js"}},
		{"X-Sun-Data-Name", ct + "X-Sun-Data-Name: invoice.js", []string{"invoice.js"}},
		{"both, in Thunderbird's order", ct + "X-Sun-Data-Name: b.vbs\r\nContent-Name: a.js", []string{"a.js", "b.vbs"}},
		{"encoded-word", ct + "Content-Name: =?UTF-8?B?6KuL5rGC5pu4Lmpz?=", []string{"請求書.js"}},
		{"after the parameters' names", "Content-Type: application/octet-stream; name=a.txt\r\nContent-Name: a.js", []string{"a.txt", "a.js"}},
		{"the same name once", "Content-Type: application/octet-stream; name=a.js\r\nContent-Name: a.js", []string{"a.js"}},
		{"names a text part", "Content-Type: text/plain\r\nContent-Name: run.vbs", []string{"run.vbs"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := ParseBytes([]byte("Subject: x\r\n"+tc.head+"\r\n\r\nMsgBox 1\r\n"), Limits{})
			if len(m.Parts) != 1 {
				t.Fatalf("%d parts, want 1", len(m.Parts))
			}
			p := m.Parts[0]
			if !slices.Equal(p.Names(), tc.names) {
				t.Errorf("names %q, want %q", p.Names(), tc.names)
			}
			if !p.IsAttachment() || string(p.Body) != "MsgBox 1\r\n" {
				t.Errorf("attachment %v body %q, want the named file", p.IsAttachment(), p.Body)
			}
		})
	}
	// Junk fields past MaxHeaderFields do not push them out of sight.
	m := ParseBytes([]byte("Subject: x\r\n"+strings.Repeat("X-J: j\r\n", 20)+"X-Sun-Data-Name: a.js\r\n\r\nx\r\n"), Limits{MaxHeaderFields: 10})
	if !slices.Equal(m.Parts[0].Names(), []string{"a.js"}) {
		t.Errorf("past the field limit: names %q, want a.js", m.Parts[0].Names())
	}
}

// TestNULInName: a name holding a NUL is saved by Windows as the name up
// to it, which is judged too; the name as given stays its Filename.
func TestNULInName(t *testing.T) {
	tests := []struct{ name, head, body string }{
		{"RFC 2231", "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''invoice.js%00.txt", "x"},
		{"RFC 2047", "Content-Type: application/octet-stream; name=\"=?utf-8?Q?invoice.js=00.txt?=\"", "x"},
		{"uuencode begin line", "Content-Type: text/plain", "begin 644 invoice.js\x00.txt\r\n#86)C\r\n`\r\nend\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := ParseBytes([]byte("Subject: x\r\n"+tc.head+"\r\n\r\n"+tc.body), Limits{})
			p := m.Parts[len(m.Parts)-1]
			if want := []string{"invoice.js\x00.txt", "invoice.js"}; !slices.Equal(p.Names(), want) {
				t.Errorf("names %q, want %q", p.Names(), want)
			}
		})
	}
}

// TestUTF7: UTF-7 (RFC 2152) in an encoded-word or an RFC 2231 value is
// decoded as the clients that show it decode it, so a name in it is
// judged as they show it.
func TestUTF7(t *testing.T) {
	tests := []struct{ in, want string }{
		// RFC 2152's examples
		{"Hi Mom -+Jjo--!", "Hi Mom -☺-!"},
		{"+ZeVnLIqe-", "日本語"},
		{"A+ImIDkQ.", "A≢Α."},
		{"invoice+AC4-js", "invoice.js"},
		{"1 +- 1", "1 + 1"},
		{"+2D3fAQ-", "\U0001F701"}, // a surrogate pair
		{"+2D0-x", "\uFFFDx"},      // a lone surrogate
		{"a+", "a"},
		{"+!x", "!x"},
		{"caf\xe9", "caf\uFFFD"},
	}
	for _, tc := range tests {
		if got := decodeUTF7([]byte(tc.in)); got != tc.want {
			t.Errorf("decodeUTF7(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, head := range []string{
		"Content-Disposition: attachment; filename*=utf-7''invoice+AC4-js",
		"Content-Disposition: attachment; filename=\"=?utf-7?Q?invoice+AC4-js?=\"",
		"Content-Disposition: attachment; filename*0*=UTF-7''invoice+AC4; filename*1*=-js",
	} {
		m := ParseBytes([]byte("Subject: x\r\nContent-Type: application/octet-stream\r\n"+head+"\r\n\r\nx"), Limits{})
		if p := m.Parts[0]; p.Filename != "invoice.js" || len(m.Findings) != 0 {
			t.Errorf("%s: filename %q, findings %v; want invoice.js and none", head, p.Filename, m.Findings)
		}
	}
}

// FuzzDecodeUTF7: any bytes decode to UTF-8 at most three times as long,
// and text without '+' or 8-bit bytes comes out as it went in.
func FuzzDecodeUTF7(f *testing.F) {
	for _, s := range []string{"Hi Mom -+Jjo--!", "+ZeVnLIqe-", "A+ImIDkQ.", "+2D3fAQ-", "+2D0-x", "a+", "+-", "caf\xe9"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := decodeUTF7(b)
		if !utf8.ValidString(s) || len(s) > maxGrowth*len(b) {
			t.Fatalf("decodeUTF7(%q) = %q: not UTF-8, or too long", b, s)
		}
		if !bytes.ContainsRune(b, '+') && isASCII(b) && s != string(b) {
			t.Fatalf("decodeUTF7(%q) = %q, want it unchanged", b, s)
		}
	})
}
