package mime

import (
	"testing"
)

// Japanese mail as old and current Japanese mailers write it, beyond the
// golden messages: raw header bytes, unescaped quoted filenames, HTML that
// declares its charset only in a meta tag.

func TestRawJapaneseHeaders(t *testing.T) {
	jis := enc(jaJIS, "請求書のお知らせ")
	tests := []struct{ name, in, want string }{
		{"raw ISO-2022-JP", jis, "請求書のお知らせ"},
		{"raw ISO-2022-JP among ASCII", "Re: " + jis + " (2)", "Re: 請求書のお知らせ (2)"},
		{"raw ISO-2022-JP half-width kana", "\x1b(I6<^I\x1b(B", "ｶｼﾞﾉ"},
		{"raw ISO-2022-JP beside an encoded-word", jis + " =?UTF-8?B?" + b64("再送") + "?=", "請求書のお知らせ 再送"},
		// 戎 is 0x3D 0x3F in JIS X 0208: "=?" inside the raw run.
		{"raw ISO-2022-JP holding =?", enc(jaJIS, "戎橋のお知らせ"), "戎橋のお知らせ"},
		{"raw Shift_JIS half-width kana", enc(jaSJIS, "[ﾑﾘｮｳ] ﾃﾞｰﾀ"), "[ﾑﾘｮｳ] ﾃﾞｰﾀ"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DecodeHeader(tc.in); got != tc.want {
				t.Errorf("DecodeHeader(%q) = %q, want %q", tc.in, got, tc.want)
			}
			m := ParseBytes([]byte("Subject: "+tc.in+"\r\n\r\nbody\r\n"), Limits{})
			if m.Subject != tc.want {
				t.Errorf("Subject = %q, want %q", m.Subject, tc.want)
			}
		})
	}
}

func TestQuotedJapaneseFilenames(t *testing.T) {
	tests := []struct{ name, disposition, want string }{
		// ア is 0x25 0x22 in JIS X 0208: a quote byte inside the name.
		{"raw ISO-2022-JP with a quote byte", `attachment; filename="` + enc(jaJIS, "アンケート.js") + `"`, "アンケート.js"},
		{"raw ISO-2022-JP", `attachment; filename="` + enc(jaJIS, "請求書.exe") + `"; size=10`, "請求書.exe"},
		// ソ is 0x83 0x5C and 表 0x95 0x5C in Shift_JIS: a backslash byte.
		{"raw Shift_JIS with 0x5C", `attachment; filename="` + enc(jaSJIS, "ソフト.exe") + `"`, "ソフト.exe"},
		{"raw Shift_JIS 0x5C before the quote", `attachment; filename="` + enc(jaSJIS, "一覧表") + `"; size=10`, "一覧表"},
		{"escapes still work in UTF-8", `attachment; filename="say \"日本\".txt"`, `say "日本".txt`},
		{"escapes still work in ASCII", `attachment; filename="a\\b\"c.txt"; size=1`, `a\b"c.txt`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := "Subject: x\r\nContent-Type: application/octet-stream\r\nContent-Disposition: " + tc.disposition + "\r\n\r\ndata\r\n"
			m := ParseBytes([]byte(msg), Limits{})
			if len(m.Parts) != 1 || m.Parts[0].Filename != tc.want {
				t.Fatalf("filename %q, want %q", m.Parts[0].Filename, tc.want)
			}
			if len(m.Findings) != 0 {
				t.Errorf("unexpected findings %v", m.Findings)
			}
		})
	}
	// The name parameter of Content-Type is read the same way.
	msg := "Subject: x\r\nContent-Type: application/octet-stream; name=\"" + enc(jaJIS, "アンケート.js") + "\"\r\n\r\ndata\r\n"
	if got := ParseBytes([]byte(msg), Limits{}).Parts[0].Filename; got != "アンケート.js" {
		t.Errorf("name= %q, want アンケート.js", got)
	}
}

func TestHTMLMetaCharset(t *testing.T) {
	// ｶｼﾞﾉ in Shift_JIS is four half-width katakana bytes that read as two
	// EUC-JP kanji: only the declaration tells them apart.
	kana := enc(jaSJIS, "ｶｼﾞﾉ")
	tests := []struct{ name, ctype, html, want, detected string }{
		{"meta charset", "text/html", `<html><head><meta charset="Shift_JIS"></head><body><p>` + kana + `</p></body></html>`, "ｶｼﾞﾉ", "shift_jis"},
		{"meta http-equiv", "text/html", `<html><head><META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=x-sjis"></head><body>` + kana + `</body></html>`, "ｶｼﾞﾉ", "shift_jis"},
		{"meta after a long head", "text/html", `<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><style>` + string(make([]byte, 1500)) + `</style><meta http-equiv=Content-Type content="text/html; charset=shift_jis"></head><body>` + kana + `</body></html>`, "ｶｼﾞﾉ", "shift_jis"},
		{"meta in the body is not a declaration", "text/html", `<html><body>` + enc(jaEUC, "カジノ") + `<meta charset="utf-8"></body></html>`, "カジノ", "euc-jp"},
		{"Content-Type charset wins", "text/html; charset=euc-jp", `<html><head><meta charset="shift_jis"></head><body>` + enc(jaEUC, "カジノ") + `</body></html>`, "カジノ", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := "Subject: x\r\nContent-Type: " + tc.ctype + "\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + tc.html + "\r\n"
			m := ParseBytes([]byte(msg), Limits{})
			p := m.Parts[0]
			if p.Text != tc.want || p.DetectedCharset != tc.detected {
				t.Errorf("text %q detected %q, want %q %q", p.Text, p.DetectedCharset, tc.want, tc.detected)
			}
			if len(m.Findings) != 0 {
				t.Errorf("unexpected findings %v", m.Findings)
			}
		})
	}
}
