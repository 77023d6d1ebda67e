package mime

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func nested(depth int) string {
	var b strings.Builder
	for i := 0; i < depth; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\ndeep\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.String()
}

func manyParts(n int) string {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=q\r\n\r\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "--q\r\nContent-Type: text/plain\r\n\r\npart %d\r\n", i)
	}
	b.WriteString("--q--\r\n")
	return b.String()
}

func TestLimits(t *testing.T) {
	big := "Content-Type: application/octet-stream\r\n\r\n" + strings.Repeat("x", 5000)
	tests := []struct {
		name    string
		msg     string
		lim     Limits
		finding string
		parts   int
	}{
		{"depth", nested(30), Limits{MaxDepth: 10}, FindDepthLimit, 0},
		{"depth ok", nested(5), Limits{MaxDepth: 10}, "", 1},
		{"parts", manyParts(50), Limits{MaxParts: 10}, FindPartsLimit, 9},
		{"part bytes", big, Limits{MaxPartBytes: 1000}, FindPartTruncated, 1},
		{"total bytes", big, Limits{MaxTotalBytes: 2000}, FindTotalLimit, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(strings.NewReader(tc.msg), tc.lim)
			if err != nil {
				t.Fatal(err)
			}
			if tc.finding != "" && !slices.Contains(m.Findings, tc.finding) {
				t.Errorf("findings %v lack %s", m.Findings, tc.finding)
			}
			if tc.finding == "" && len(m.Findings) > 0 {
				t.Errorf("unexpected findings %v", m.Findings)
			}
			if len(m.Parts) != tc.parts {
				t.Errorf("%d parts, want %d", len(m.Parts), tc.parts)
			}
			for _, p := range m.Parts {
				if lim := tc.lim.withDefaults(); int64(len(p.Body)) > lim.MaxPartBytes || int64(len(p.Body)) > lim.MaxTotalBytes {
					t.Errorf("part %s keeps %d bytes over the limits", p.Path, len(p.Body))
				}
			}
		})
	}
}

func TestToUTF8(t *testing.T) {
	tests := []struct{ in, label, want, used string }{
		{"hello", "", "hello", "us-ascii"},
		{enc(jaSJIS, "日本語"), "shift_jis", "日本語", "shift_jis"},
		{enc(jaSJIS, "日本語のテキスト"), "iso-2022-jp", "日本語のテキスト", "shift_jis"},
		{enc(jaEUC, "日本語のテキスト"), "us-ascii", "日本語のテキスト", "euc-jp"},
		{enc(jaJIS, "日本語"), "", "日本語", "iso-2022-jp"},
		{enc(jaJIS, "日本語"), "shift_jis", "日本語", "iso-2022-jp"},
		{"caf\xe9", "iso-8859-1", "café", "iso-8859-1"},
		{"日本語", "iso-2022-jp", "日本語", "utf-8"},
		{enc(jaSJIS, "ﾃｽﾄ"), "cp932", "ﾃｽﾄ", "shift_jis"},
		{"\x1b(IC=D\x1b(B", "iso-2022-jp", "ﾃｽﾄ", "iso-2022-jp"}, // half-width kana, ESC ( I (JIS X 0201)
		// The two labels lie about each other: each reads the other's
		// bytes without an error, as garbage (EUC-JP as half-width kana).
		{enc(jaEUC, "口座確認のお願い"), "shift_jis", "口座確認のお願い", "euc-jp"},
		{enc(jaEUC, "未承諾広告"), "shift_jis", "未承諾広告", "euc-jp"},
		{enc(jaSJIS, "口座確認のお願い"), "euc-jp", "口座確認のお願い", "shift_jis"},
		{"口座確認のお願い", "shift_jis", "口座確認のお願い", "utf-8"},
		{enc(jaEUC, "口座確認のお願い"), "euc-jp", "口座確認のお願い", "euc-jp"},
		{enc(jaSJIS, "請求書 ﾃｽﾄ"), "shift_jis", "請求書 ﾃｽﾄ", "shift_jis"},
		// Unlabelled half-width katakana in Shift_JIS, an even number of
		// bytes in 0xA1-0xDF: EUC-JP reads them too, as kanji (筑粟 鏡凝),
		// or with a row JIS X 0208 leaves empty (ﾑﾘｮｳ: 0xAE 0xB3).
		{enc(jaSJIS, "ﾑﾘｮｳ"), "", "ﾑﾘｮｳ", "shift_jis"},
		{enc(jaSJIS, "ﾃﾞｰﾀ ｶﾀｶﾅ"), "", "ﾃﾞｰﾀ ｶﾀｶﾅ", "shift_jis"},
		{enc(jaSJIS, "[ﾑﾘｮｳ] ﾃﾞｰﾀ"), "", "[ﾑﾘｮｳ] ﾃﾞｰﾀ", "shift_jis"},
		{enc(jaSJIS, "ｱﾀﾞﾙﾄ"), "", "ｱﾀﾞﾙﾄ", "shift_jis"},
		// The same bytes ranges in EUC-JP: hiragana (read as Shift_JIS,
		// half-width punctuation: ､｢､､), or kanji whose Shift_JIS reading
		// puts a sound mark after ｰ and ｳ (ﾇﾞｳﾞ, ｰﾞ).
		{enc(jaEUC, "あい"), "", "あい", "euc-jp"},
		{enc(jaEUC, "媒笠"), "", "媒笠", "euc-jp"},
		{enc(jaEUC, "緯"), "", "緯", "euc-jp"},
		// Kanji whose Shift_JIS reading is a rare kanji glued between
		// half-width kana (ｷ羃ﾂ, ﾉ郞ﾈ): EUC-JP.
		{enc(jaEUC, "激安"), "", "激安", "euc-jp"},
		{enc(jaEUC, "副業"), "", "副業", "euc-jp"},
		{enc(jaEUC, "激安 副業"), "", "激安 副業", "euc-jp"},
	}
	for _, tc := range tests {
		t.Run(tc.label+"/"+tc.want, func(t *testing.T) {
			got, used := ToUTF8([]byte(tc.in), tc.label)
			if got != tc.want || used != tc.used {
				t.Errorf("ToUTF8 = %q, %q; want %q, %q", got, used, tc.want, tc.used)
			}
		})
	}
}

func TestDecodeHeader(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"=?UTF-8?B?" + b64("日本") + "?= =?UTF-8?B?" + b64("語") + "?=", "日本語"},
		// a character split across two words must survive
		{"=?UTF-8?B?" + b64("日本語"[:4]) + "?=\r\n =?UTF-8?B?" + b64("日本語"[4:]) + "?=", "日本語"},
		{"=?iso-2022-jp?B?" + b64(enc(jaJIS, "件名")) + "?= tail", "件名 tail"},
		{"=?ISO-8859-1?Q?caf=E9_au_lait?=", "café au lait"},
		{"Re: " + enc(jaSJIS, "生の") + " bytes", "Re: 生の bytes"},
		{"=?broken", "=?broken"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := DecodeHeader(tc.in); got != tc.want {
				t.Errorf("DecodeHeader(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzParse walks any message within small limits. Its seeds are the golden
// messages, those added here, and testdata/fuzz/FuzzParse (among them the
// evasions the walker was taught: a boundary given twice, yEnc in text,
// names in the fields Thunderbird falls back to).
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(nested(25)))
	f.Add([]byte(manyParts(20)))
	// Raw Japanese in headers and quoted parameters, and an HTML meta charset.
	f.Add([]byte("Subject: " + enc(jaJIS, "戎橋") + " =?x?B?QQ==?=\r\nContent-Type: text/html; name=\"" + enc(jaJIS, "ア") +
		"\"\r\nContent-Disposition: attachment; filename=\"" + enc(jaSJIS, "表") + "\"\r\n\r\n<meta charset=sjis>\xb6\xbc\r\n"))
	lim := Limits{MaxParts: 50, MaxDepth: 8, MaxPartBytes: 1 << 16, MaxTotalBytes: 1 << 18}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Parse(bytes.NewReader(raw), lim)
		if err != nil {
			t.Fatal(err)
		}
		// ParseBytes walks the caller's bytes in place: same result, and
		// the bytes are left as they were.
		orig := bytes.Clone(raw)
		if mb := ParseBytes(raw, lim); !reflect.DeepEqual(mb, m) {
			t.Fatalf("ParseBytes differs from Parse")
		}
		if !bytes.Equal(raw, orig) {
			t.Fatalf("ParseBytes modified its input")
		}
		if len(m.Parts) > lim.MaxParts {
			t.Fatalf("%d parts over the limit", len(m.Parts))
		}
		var total int64
		for _, p := range m.Parts {
			if p.Depth > lim.MaxDepth || int64(len(p.Body)) > lim.MaxPartBytes {
				t.Fatalf("part %s over the limits", p.Path)
			}
			total += int64(len(p.Body))
		}
		if total > lim.MaxTotalBytes {
			t.Fatalf("%d decoded bytes over the limit", total)
		}
	})
}

func TestStructure(t *testing.T) {
	tests := []struct {
		name    string
		msg     string
		paths   []string
		texts   []string
		finding string
	}{
		{"multipart without boundary is scanned as text",
			"Content-Type: multipart/mixed\r\n\r\nhidden words\r\n", []string{"1"}, []string{"hidden words"}, FindBoundaryBroken},
		{"unclosed multipart keeps its last part",
			"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\none\r\n--x\r\n\r\ntwo", []string{"1", "2"}, []string{"one", "two"}, FindBoundaryBroken},
		{"forwarded message is walked",
			"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=y\r\n\r\n--y\r\n\r\ninner text\r\n--y--\r\n--x--\r\n",
			[]string{"1.1"}, []string{"inner text"}, ""},
		{"boundary prefix of another is not a delimiter",
			"Content-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n\r\nkeep --abc line\r\n--abc\r\n--ab--\r\n", []string{"1"}, []string{"keep --abc line\r\n--abc"}, ""},
		{"quoted boundary and LF line ends",
			"Content-Type: multipart/mixed; boundary=\"a b;c\"\n\n--a b;c\nContent-Type: text/plain\n\nlf\n--a b;c--\n", []string{"1"}, []string{"lf"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(strings.NewReader(tc.msg), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			var paths, texts []string
			for _, p := range m.Parts {
				paths, texts = append(paths, p.Path), append(texts, strings.TrimSpace(p.Text))
			}
			if !slices.Equal(paths, tc.paths) || !slices.Equal(texts, tc.texts) {
				t.Errorf("paths %q texts %q, want %q %q", paths, texts, tc.paths, tc.texts)
			}
			if (tc.finding == "") != (len(m.Findings) == 0) || tc.finding != "" && !slices.Contains(m.Findings, tc.finding) {
				t.Errorf("findings %v, want %q", m.Findings, tc.finding)
			}
		})
	}
}

func TestUUEncode(t *testing.T) {
	// "hello, world\n" as uuencode(1) writes it.
	msg := "Subject: uu\r\n\r\nsee below\r\nbegin 644 hello.txt\r\n-:&5L;&\\L('=O<FQD\"@``\r\n`\r\nend\r\ntrailer\r\n"
	m, err := Parse(strings.NewReader(msg), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Parts) != 2 {
		t.Fatalf("%d parts, want the text and the file", len(m.Parts))
	}
	p := m.Parts[1]
	if p.Path != "1.u1" || p.Filename != "hello.txt" || string(p.Body) != "hello, world\n" {
		t.Errorf("uuencoded part %q %q %q", p.Path, p.Filename, p.Body)
	}
	if m2, _ := Parse(strings.NewReader("Subject: x\r\n\r\nbegin the meeting at ten\r\n"), Limits{}); len(m2.Parts) != 1 {
		t.Errorf("prose starting with begin made %d parts", len(m2.Parts))
	}
}

// BenchmarkFoldedHeader parses a 1.2 MB header folded 200,000 times in one
// field, against the baseline of the same bytes as 200,000 fields (the
// stranger's cheapest way to make every stage parse a big header).
// Unfolding used to copy the value at every line: quadratic, 12.2 s for
// this input here, against 9 ms now (the baseline: 132 ms).
func BenchmarkFoldedHeader(b *testing.B) {
	const n = 200_000
	folded := "X-Long: a" + strings.Repeat("\r\n b", n) + "\r\n\r\nbody\r\n"
	separate := strings.Repeat("X-L: b\r\n", n) + "\r\nbody\r\n"
	for _, c := range []struct{ name, raw string }{{"separate fields (baseline)", separate}, {"one field folded", folded}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.raw)))
			for range b.N {
				m := ParseBytes([]byte(c.raw), DefaultLimits())
				if len(m.Header) == 0 {
					b.Fatal("no header")
				}
			}
		})
	}
}

// TestFoldedHeaderUnfolds: continuation lines join their field, across a
// malformed line too, and the next field starts afresh.
func TestFoldedHeaderUnfolds(t *testing.T) {
	m := ParseBytes([]byte("Subject: a\r\n b\r\n\tc\r\nnot a field\r\n d\r\nX-N: e\r\n f\r\n\r\nbody\r\n"), DefaultLimits())
	if got := m.Get("Subject"); got != "a b c d" {
		t.Errorf("Subject %q", got)
	}
	if got := m.Get("X-N"); got != "e f" {
		t.Errorf("X-N %q", got)
	}
}

// TestHeaderFieldLimit: a header of more than MaxHeaderFields fields keeps
// only the first ones and, past them, the fields the walk and the rules
// read: junk fields cannot hide the Content-Type (the attachment stays in
// sight) or the Subject, and a million of them cost a walk next to nothing
// (they took a stage a gigabyte before: each was kept).
func TestHeaderFieldLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: a@example.org\r\n")
	for range 1_000_000 {
		b.WriteString("A:\r\n folded\r\n")
	}
	b.WriteString("Subject: after the junk\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=x.exe\r\n\r\nMZ\r\n--b--\r\n")
	raw := []byte(b.String())
	var m *Message
	allocs := testing.AllocsPerRun(1, func() { m = ParseBytes(raw, Limits{MaxHeaderFields: 100}) })
	if m.Subject != "after the junk" || len(m.Header) != 103 || !slices.Contains(m.Findings, FindHeaderLimit) {
		t.Errorf("subject %q, %d fields, findings %v; want the subject, 100 + 3 fields, %s",
			m.Subject, len(m.Header), m.Findings, FindHeaderLimit)
	}
	if len(m.Parts) != 2 || m.Parts[1].Filename != "x.exe" {
		t.Errorf("parts %d, want the text and x.exe", len(m.Parts))
	}
	if allocs > 10_000 {
		t.Errorf("%.0f allocations for a million junk fields: they are kept", allocs)
	}
	// A flood of the names kept past the limit keeps one of each.
	for _, name := range []string{"To", "Content-Type", "Content-X"} {
		var b strings.Builder
		for range 100_000 {
			b.WriteString(name + ": x@example.org\r\n")
		}
		b.WriteString("Subject: s\r\n\r\nbody\r\n")
		m := ParseBytes([]byte(b.String()), Limits{MaxHeaderFields: 100})
		if len(m.Header) > 102 || m.Subject != "s" {
			t.Errorf("100,000 %s fields: %d kept, subject %q; want at most 102 and the subject", name, len(m.Header), m.Subject)
		}
	}
}

// yencode encodes a file as a yEnc 1.3 block, escaping the bytes an
// encoder must (NUL, LF, CR, '=').
func yencode(begin, data string) string {
	var b strings.Builder
	b.WriteString("=ybegin " + begin + "\r\n")
	for i := 0; i < len(data); i++ {
		switch c := data[i] + 42; c {
		case 0, '\n', '\r', '=':
			b.WriteString("=" + string(rune(c+64)))
		default:
			b.WriteByte(c)
		}
		if i%64 == 63 {
			b.WriteString("\r\n")
		}
	}
	b.WriteString("\r\n=yend size=" + strconv.Itoa(len(data)) + "\r\n")
	return b.String()
}

// TestYEnc: a yEnc block in untyped text becomes an attachment in
// Thunderbird, so it is a part, where uuencode is looked for: in a body
// with no MIME header, in a part typed "text" alone, in text/plain.
func TestYEnc(t *testing.T) {
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	file := "MZ" + string(all) // every byte, those an encoder escapes among them
	block := yencode("line=128 size=258 name=invoice 1.exe", file)
	type part struct{ path, name, body string }
	tests := []struct {
		name, msg string
		want      []part
	}{
		{"message without MIME headers", "Subject: y\r\n\r\nHi,\r\n\r\n" + block + "bye\r\n",
			[]part{{"1", "", ""}, {"1.y1", "invoice 1.exe", file}}},
		{"part typed text alone", "Subject: y\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text\r\n\r\n" + block + "--b--\r\n",
			[]part{{"1", "", ""}, {"1.y1", "invoice 1.exe", file}}},
		{"first block of a multi-part file", "Subject: y\r\n\r\n" +
			strings.Replace(yencode("part=1 total=2 line=128 size=9000 name=a.exe", file), "\r\n", "\r\n=ypart begin=1 end=258\r\n", 1),
			[]part{{"1", "", ""}, {"1.y1", "a.exe", file}}},
		{"a block without its end does not swallow the next", "Subject: y\r\n\r\n" +
			strings.Replace(yencode("line=128 size=2 name=a.txt", "hi"), "=yend size=2\r\n", "", 1) + block,
			[]part{{"1", "", ""}, {"1.y1", "a.txt", "hi"}, {"1.y2", "invoice 1.exe", file}}},
		{"uuencode and yEnc in the order of the text", "Subject: y\r\n\r\n" + block + uuencode("b.js", "WScript") + yencode("line=128 size=1 name=c.js", "x"),
			[]part{{"1", "", ""}, {"1.y1", "invoice 1.exe", file}, {"1.u2", "b.js", "WScript"}, {"1.y3", "c.js", "x"}}},
		{"=ybegin without a name is prose", "Subject: y\r\n\r\n=ybegin line=128 size=1\r\nx\r\n=yend\r\n",
			[]part{{"1", "", ""}}},
		{"not looked for in HTML", "Subject: y\r\nContent-Type: text/html\r\n\r\n" + block,
			[]part{{"1", "", ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := ParseBytes([]byte(tc.msg), Limits{})
			var got []part
			for _, p := range m.Parts {
				got = append(got, part{p.Path, p.Filename, string(p.Body)})
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("parts %q,\nwant %q", got, tc.want)
			}
			if len(m.Findings) != 0 {
				t.Errorf("unexpected findings %v", m.Findings)
			}
		})
	}
	// The limits hold as for any part: past 200 bytes, the text is cut
	// and the file decoded from what is left of it.
	m := ParseBytes([]byte("Subject: y\r\n\r\n"+block), Limits{MaxPartBytes: 200})
	if len(m.Parts) != 2 || len(m.Parts[1].Body) > 200 || !strings.HasPrefix(file, string(m.Parts[1].Body)) ||
		!slices.Equal(m.Findings, []string{FindPartTruncated}) {
		t.Errorf("%d parts, findings %v; want the text and the head of the yEnc file, %s", len(m.Parts), m.Findings, FindPartTruncated)
	}
}
