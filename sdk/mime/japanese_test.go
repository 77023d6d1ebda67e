package mime

import (
	"slices"
	"strings"
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
		{"raw EUC-JP kanji that read as Shift_JIS kana and kanji", "Re: " + enc(jaEUC, "激安"), "Re: 激安"},
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

// TestAmbiguousQuotedParams: a double-byte ISO-2022-JP run opened in one
// quoted value and left only in a later one makes the walker's reading one
// value where a client that reads quoted strings the standard way sees
// the parameters between, and saves the file under their filename=. The
// walker must see those names too, and say the field is ambiguous; a real
// Japanese name whose JIS pair holds '"' is no such field.
func TestAmbiguousQuotedParams(t *testing.T) {
	const ct = "Content-Type: application/octet-stream"
	tests := []struct {
		name, head string
		want       string // a name of the part
		ambiguous  bool
	}{
		{"filename hidden in Content-Type",
			ct + "; name=\"\x1b$B\"; filename=\"evil.exe\"; x=\"\x1b(B\"", "evil.exe", true},
		{"filename hidden in Content-Disposition",
			ct + "\r\nContent-Disposition: attachment; name=\"\x1b$B\"; filename=\"evil.exe\"; x=\"\x1b(B\"", "evil.exe", true},
		{"RFC 2231 filename* hidden in Content-Disposition",
			ct + "\r\nContent-Disposition: attachment; x=\"\x1b$B\"; filename*=UTF-8''evil%2Eexe; y=\"\x1b(B\"", "evil.exe", true},
		{"continued RFC 2231 filename hidden behind a name",
			ct + "; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"\x1b$B\"; filename*0=\"evil\"; filename*1=\".exe\"; x=\"\x1b(B\"",
			"evil.exe", true},
		{"filename hidden before a later one",
			ct + "\r\nContent-Disposition: attachment; x=\"\x1b$B\"; filename=\"evil.exe\"; y=\"\x1b(B\"; filename=\"a.txt\"", "evil.exe", true},
		{"unquoted filename hidden, the run left unquoted",
			ct + "; name=\"\x1b$B\"; filename=evil.exe; x=\x1b(B\"", "evil.exe", true},
		// ソ is 0x83 0x5C in Shift_JIS: that reading ends the value at
		// the quote a plain reader takes as escaped, and reads the next
		// quoted value over the filename= a plain reader sees.
		{"filename hidden by a Shift_JIS reading",
			ct + "; name=\"\x83\\\"; b=\"; filename=evil.exe; q=\"\"", "evil.exe", true},
		{"genuine ISO-2022-JP name with a quote byte",
			ct + "\r\nContent-Disposition: attachment; filename=\"" + enc(jaJIS, "アンケート.js") + "\"; size=10", "アンケート.js", false},
		{"genuine ISO-2022-JP name= with a quote byte",
			ct + "; name=\"" + enc(jaJIS, "アンケート請求書.js") + "\"; charset=us-ascii", "アンケート請求書.js", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := ParseBytes([]byte("Subject: x\r\n"+tc.head+"\r\n\r\ndata\r\n"), Limits{})
			if len(m.Parts) != 1 {
				t.Fatalf("%d parts, want 1", len(m.Parts))
			}
			p := m.Parts[0]
			if !slices.Contains(p.Names(), tc.want) {
				t.Errorf("names %q, want %q among them", p.Names(), tc.want)
			}
			if got := slices.Contains(m.Findings, FindParamAmbiguous); got != tc.ambiguous {
				t.Errorf("findings %v: %s %v, want %v", m.Findings, FindParamAmbiguous, got, tc.ambiguous)
			}
			if !tc.ambiguous && (p.Filename != tc.want || len(m.Findings) != 0) {
				t.Errorf("filename %q findings %v, want %q and none", p.Filename, m.Findings, tc.want)
			}
		})
	}
}

// TestAmbiguousBoundary: a boundary hidden the same way is seen, so the
// attachments of the multipart are walked as parts.
func TestAmbiguousBoundary(t *testing.T) {
	msg := "Subject: x\r\nContent-Type: multipart/mixed; x=\"\x1b$B\"; boundary=\"b\"; y=\"\x1b(B\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream; name=\"a.exe\"\r\n\r\nMZ\r\n--b--\r\n"
	m := ParseBytes([]byte(msg), Limits{})
	if len(m.Parts) != 2 || m.Parts[1].Filename != "a.exe" {
		t.Fatalf("%d parts, want the two of the multipart", len(m.Parts))
	}
	if !slices.Equal(m.Findings, []string{FindParamAmbiguous}) {
		t.Errorf("findings %v, want %s", m.Findings, FindParamAmbiguous)
	}
}

// TestStrayBytes: a byte or two that are not of the declared charset (a
// mailing list's Latin-1 footer, a character cut at the end of a part)
// cost only themselves, as in Thunderbird: the rest of the part is read in
// its charset, and it is no mislabel. A label whose reading is mostly
// invalid still gives way to the charset that reads the bytes.
func TestStrayBytes(t *testing.T) {
	const ad = "未承諾広告のお知らせです。パスワードを確認してください。"
	const hwKana = "ｶｼﾞﾉ ｼｭｳﾆｭｳ ｻﾌﾟﾘ ﾃﾞｰﾄ ｶﾞｰﾙ ｹﾞｰﾑ"
	const bad = "\ufffd"
	tests := []struct {
		name, ctype, body, want, detected string
		mislabelled                       bool
	}{
		{"UTF-8 with a Latin-1 ©", "text/plain; charset=UTF-8", ad + "\r\n\xa9 2024 Example\r\n",
			ad + "\r\n" + bad + " 2024 Example\r\n", "", false},
		{"UTF-8 cut short at the end", "text/plain; charset=utf-8", ad + "\r\n終わ\xe3\x82",
			ad + "\r\n終わ" + bad, "", false},
		{"unlabelled UTF-8 with a Latin-1 ©", "text/plain", ad + "\r\n\xa9 2024\r\n",
			ad + "\r\n" + bad + " 2024\r\n", "utf-8", false},
		{"ISO-2022-JP with an 8-bit footer", "text/plain; charset=ISO-2022-JP", enc(jaJIS, ad) + "\r\n-- \r\n\xa9 2024 Example ML\r\n",
			ad + "\r\n-- \r\n" + bad + " 2024 Example ML\r\n", "", false},
		{"EUC-JP with a stray 0x80", "text/plain; charset=EUC-JP", enc(jaEUC, ad) + "\r\n\x80\r\n",
			ad + "\r\n" + bad + "\r\n", "", false},
		{"Shift_JIS with two bytes it lacks", "text/plain; charset=Shift_JIS", enc(jaSJIS, ad) + "\r\n\xfd\xfe\r\n",
			ad + "\r\n" + bad + bad + "\r\n", "", false},
		{"EUC-JP labelled Shift_JIS, with a stray 0x80", "text/plain; charset=Shift_JIS", enc(jaEUC, ad) + "\r\n\x80\r\n",
			ad + "\r\n" + bad + "\r\n", "euc-jp", true},
		{"UTF-8 labelled Shift_JIS, with a Latin-1 ©", "text/plain; charset=Shift_JIS", ad + "\r\n\xa9\r\n",
			ad + "\r\n" + bad + "\r\n", "utf-8", true},
		{"Shift_JIS labelled UTF-8", "text/plain; charset=UTF-8", enc(jaSJIS, ad) + "\r\n",
			ad + "\r\n", "shift_jis", true},
		// Half-width katakana in Shift_JIS is also EUC-JP (any even run of
		// 0xA1-0xDF) and, in pairs, two-byte UTF-8: a stray byte must not
		// make either reading replace the label's (a spammer's evasion:
		// the client shows the katakana, rules would see kanji).
		{"half-width katakana with a stray 0xA0", "text/plain; charset=Shift_JIS", enc(jaSJIS, hwKana) + "\r\n\xa0",
			hwKana + "\r\n" + bad, "", false},
		{"half-width katakana as UTF-8 pairs, with a stray 0xA0", "text/plain; charset=Shift_JIS", enc(jaSJIS, "ﾏｲﾃｽ ﾏｲﾃｽ ﾏｲﾃｽ ﾏｲﾃｽ ﾏｲﾃｽ") + "\xa0",
			"ﾏｲﾃｽ ﾏｲﾃｽ ﾏｲﾃｽ ﾏｲﾃｽ ﾏｲﾃｽ" + bad, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := "Subject: x\r\nContent-Type: " + tc.ctype + "\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + tc.body
			m := ParseBytes([]byte(msg), Limits{})
			p := m.Parts[0]
			if p.Text != tc.want || p.DetectedCharset != tc.detected {
				t.Errorf("text %q detected %q, want %q %q", p.Text, p.DetectedCharset, tc.want, tc.detected)
			}
			if got := slices.Contains(m.Findings, FindMislabelled); got != tc.mislabelled || len(m.Findings) > 1 {
				t.Errorf("findings %v, want %s %v and no other", m.Findings, FindMislabelled, tc.mislabelled)
			}
		})
	}
}

// TestStrayBytesSubject: the same in encoded-words, and in a character
// whose last byte was lost between two of them.
func TestStrayBytesSubject(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"UTF-8 word with a Latin-1 ©", "=?UTF-8?B?" + b64("【未承諾広告】激安\xa9") + "?=", "【未承諾広告】激安\ufffd"},
		{"ISO-2022-JP word with a Latin-1 ©", "=?ISO-2022-JP?B?" + b64(enc(jaJIS, "【未承諾広告】激安")+"\xa9") + "?=", "【未承諾広告】激安\ufffd"},
		{"UTF-8 character cut between words", "=?UTF-8?B?" + b64("【\xe6\x9c") + "?= =?UTF-8?B?" + b64("承諾広告】激安") + "?=", "【\ufffd承諾広告】激安"},
		{"raw UTF-8 with a Latin-1 ©", "【未承諾広告】激安セール開催中\xa9", "【未承諾広告】激安セール開催中\ufffd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := ParseBytes([]byte("Subject: "+tc.in+"\r\n\r\nbody\r\n"), Limits{})
			if m.Subject != tc.want {
				t.Errorf("Subject = %q, want %q", m.Subject, tc.want)
			}
			if len(m.Findings) != 0 {
				t.Errorf("unexpected findings %v", m.Findings)
			}
		})
	}
}

// TestJapaneseLabels: labels Japanese mailers write that no index knows
// are read as their charset, with no charset.unknown finding.
func TestJapaneseLabels(t *testing.T) {
	const text = "未承諾広告のお知らせ"
	tests := []struct{ label, body, want string }{
		{"x-euc", enc(jaEUC, text), text},
		{"ujis", enc(jaEUC, text), text},
		{"EUC-JP-MS", enc(jaEUC, text), text},
		{"x-iso-2022-jp", enc(jaJIS, text), text},
		{"ISO-2022-JP-2004", strings.ReplaceAll(enc(jaJIS, text), "\x1b$B", "\x1b$(Q"), text},
		// JIS X 0213 only (plane 1 row 14, empty in JIS X 0208; plane 2):
		// no table has them, so each is one U+FFFD, and the label is still
		// the text's, even where they are most of it.
		{"ISO-2022-JP-2004", "\x1b$(Q.!\x1b$(P!!\x1b$(Q" + strings.TrimPrefix(enc(jaJIS, text), "\x1b$B"), "\ufffd\ufffd" + text},
		{"ISO-2022-JP-2004", "\x1b$(Q.\"\x1b(B \x1b$(Q.!\x1b(B " + enc(jaJIS, "テスト"), "\ufffd \ufffd テスト"},
	}
	for _, tc := range tests {
		t.Run(tc.label, func(t *testing.T) {
			msg := "Subject: =?" + tc.label + "?B?" + b64(tc.body) + "?=\r\nContent-Type: text/plain; charset=" + tc.label + "\r\n\r\n" + tc.body + "\r\n"
			m := ParseBytes([]byte(msg), Limits{})
			if m.Subject != tc.want || m.Parts[0].Text != tc.want+"\r\n" {
				t.Errorf("subject %q text %q, want %q", m.Subject, m.Parts[0].Text, tc.want)
			}
			if len(m.Findings) != 0 {
				t.Errorf("unexpected findings %v", m.Findings)
			}
		})
	}
}

// TestBoundaryGivenTwice: a multipart that gives its boundary twice is
// walked under each value whose delimiter lines its body holds (Python's
// email and Thunderbird take the first, a map the last), so the file
// delimited by either is a part; the field is ambiguous either way.
func TestBoundaryGivenTwice(t *testing.T) {
	const text = "Content-Type: text/plain\r\n\r\nhello\r\n"
	const exe = "Content-Type: application/octet-stream; name=\"evil.exe\"\r\n\r\nMZ\r\n"
	tests := []struct {
		name, params, body string
		want               []string // names of the parts, "" for the text
		findings           []string
	}{
		{"parts delimited by the first", `boundary="A"; boundary="B"`,
			"--A\r\n" + text + "--A\r\n" + exe + "--A--\r\n", []string{"", "evil.exe"}, []string{FindParamAmbiguous}},
		{"parts delimited by the last", `boundary="A"; boundary="B"`,
			"--B\r\n" + text + "--B\r\n" + exe + "--B--\r\n", []string{"", "evil.exe"}, []string{FindParamAmbiguous}},
		{"a file under each reading", `boundary=A; boundary=B`,
			"--A\r\n" + text + "--A--\r\n--B\r\n" + strings.Replace(exe, "evil", "b", 1) + "--B--\r\n",
			[]string{"", "b.exe"}, []string{FindParamAmbiguous}},
		{"neither delimits: the first is taken", `boundary=A; boundary=B`,
			"hello\r\n", []string{""}, []string{FindParamAmbiguous, FindBoundaryBroken}},
		{"the same value twice", `boundary=A; boundary="A"`,
			"--A\r\n" + exe + "--A--\r\n", []string{"evil.exe"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := ParseBytes([]byte("Subject: x\r\nContent-Type: multipart/mixed; "+tc.params+"\r\n\r\n"+tc.body), Limits{})
			var names []string
			for _, p := range m.Parts {
				names = append(names, p.Filename)
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("parts named %q, want %q", names, tc.want)
			}
			if !slices.Equal(m.Findings, tc.findings) {
				t.Errorf("findings %v, want %v", m.Findings, tc.findings)
			}
		})
	}
	// Readings past maxExtraReadings are not walked, and say so.
	var b strings.Builder
	b.WriteString("Subject: x\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n")
	for range maxExtraReadings + 1 {
		b.WriteString("--o\r\nContent-Type: multipart/mixed; boundary=A; boundary=B\r\n\r\n--A\r\n" + text + "--A--\r\n--B\r\n" + text + "--B--\r\n")
	}
	b.WriteString("--o--\r\n")
	m := ParseBytes([]byte(b.String()), Limits{})
	if len(m.Parts) != 2*maxExtraReadings+1 || !slices.Contains(m.Findings, FindPartsLimit) {
		t.Errorf("%d parts, findings %v; want %d and %s", len(m.Parts), m.Findings, 2*maxExtraReadings+1, FindPartsLimit)
	}
}
