package bayes

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestTokenizeGolden checks the tokens of sample messages against golden
// files (one token a line): go test -run TestTokenizeGolden -update rewrites them.
func TestTokenizeGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/tokens/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	tok := NewTokenizer(DefaultTokenizerOptions())
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(tok.Tokens(ParseDoc(bytes.NewReader(raw))), "\n") + "\n"
			golden := strings.TrimSuffix(f, ".eml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("tokens differ from %s (run with -update after checking):\n%s", golden, lineDiff(string(want), got))
			}
		})
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// TestTokenizeFeatures pins the behaviours the golden files show, so that
// a careless -update cannot lose them.
func TestTokenizeFeatures(t *testing.T) {
	tok := NewTokenizer(DefaultTokenizerOptions())
	tokens := func(t *testing.T, file string) []string {
		raw, err := os.ReadFile(filepath.Join("testdata/tokens", file))
		if err != nil {
			t.Fatal(err)
		}
		return tok.Tokens(ParseDoc(bytes.NewReader(raw)))
	}
	tests := []struct {
		file      string
		want, not []string
	}{
		{"japanese-iso2022jp.eml",
			[]string{"会議", "議は", "午後", "s:会議", "s:知ら", "f:山田", "url:www.example.jp", "url:example.jp", "h:mail.example.jp", "hdr:mid", "ho:^>from"},
			[]string{"お世話になっております"}},
		{"japanese-sjis-html.eml",
			[]string{"激安", "セー", "クリ", "url:click.tracker.spam.example", "url:spam.example", "s:激安"},
			[]string{"var", "x=1"}},
		{"english-html.eml",
			[]string{"don't", "e-mail", "$19.99", "url:www.cheap-ink.example.biz", "url:example.biz", "skip:a60",
				"s:save", "s:save cartridges", "xm:massmailer", "e-mail offer", "content-transfer-encoding:quoted-printable"},
			[]string{"hidden", "comment", "delivered-to:user", "hdr:x-spam-level"}},
		{"plain-ham.eml",
			[]string{"gcc-12", "url:bugs.example.org", "xm:mutt", "s:arm64", "linker error"},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := tokens(t, tt.file)
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("missing token %q in %q", w, got)
				}
			}
			for _, n := range tt.not {
				if slices.Contains(got, n) {
					t.Errorf("unexpected token %q", n)
				}
			}
		})
	}
}

func TestTokenizeBounds(t *testing.T) {
	opt := DefaultTokenizerOptions()
	opt.MaxTokens = 10
	body := strings.Repeat("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu ", 50)
	d := &Doc{Parts: []Part{{ContentType: "text/plain", Text: body}}}
	got := NewTokenizer(opt).Tokens(d)
	if len(got) != 10 {
		t.Errorf("got %d tokens, want the bound 10", len(got))
	}
	seen := map[string]bool{}
	for _, tk := range got {
		if seen[tk] {
			t.Errorf("duplicate token %q", tk)
		}
		seen[tk] = true
	}
}

func TestTokenizeRawHTMLPart(t *testing.T) {
	d := &Doc{Parts: []Part{{ContentType: "text/html", HTML: true,
		Text: `<p>Cheap <b>pills</b></p><img src="http://192.0.2.7/p.gif"><script>evil()</script>`}}}
	got := NewTokenizer(DefaultTokenizerOptions()).Tokens(d)
	for _, w := range []string{"cheap", "pills", "cheap pills", "url:*ip*", "tag:img", "tag:b"} {
		if !slices.Contains(got, w) {
			t.Errorf("missing %q in %q", w, got)
		}
	}
	if slices.Contains(got, "evil") {
		t.Errorf("script content tokenized: %q", got)
	}
}

// TestKeysMatchTokens: the pooled key path gives the keys of Tokens, also
// when a set is reused for a second message.
func TestKeysMatchTokens(t *testing.T) {
	tok := NewTokenizer(DefaultTokenizerOptions())
	files, _ := filepath.Glob("testdata/tokens/*.eml")
	for round := 0; round < 2; round++ {
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			toks := tok.Tokens(ParseDoc(bytes.NewReader(raw)))
			keys := tok.Keys(ParseDoc(bytes.NewReader(raw)))
			if len(keys) != len(toks) {
				t.Fatalf("%s: %d keys for %d tokens", f, len(keys), len(toks))
			}
			for i := range toks {
				if keys[i] != KeyOf(toks[i]) {
					t.Fatalf("%s: key %d differs", f, i)
				}
			}
		}
	}
}

// TestTokenizeMarkup: the HTML source of a quoted-printable text/html part
// gives tag, attribute, style and comment tokens; text/plain gives none.
func TestTokenizeMarkup(t *testing.T) {
	raw := "From: a@example.com\r\nSubject: hi\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\n<font color=red>not markup</font>\r\n" +
		"--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"<html><body bgcolor=3D\"#FFFFFF\"><font color=3D\"#FF0000\" size=3D\"+2\">Bu<!-- x -->y</font>" +
		"<p style=3D\"font-size: 10px; color:red\">now</p><table width=3D100%></table></body></html>\r\n--b--\r\n"
	got := NewTokenizer(DefaultTokenizerOptions()).Tokens(parseDoc([]byte(raw)))
	for _, w := range []string{"tag:font", "tag:table", "html:font:color=#ff0000", "html:font:size=+2",
		"html:body:bgcolor=#ffffff", "html:table:width=100%", "css:font-size:10px", "css:color:red", "html:comment"} {
		if !slices.Contains(got, w) {
			t.Errorf("missing %q in %q", w, got)
		}
	}
	if slices.Contains(got, "html:font:color=red") {
		t.Errorf("text/plain part tokenized as markup")
	}
	opt := DefaultTokenizerOptions()
	opt.RawHTML = false
	for _, w := range NewTokenizer(opt).Tokens(parseDoc([]byte(raw))) {
		if strings.HasPrefix(w, "html:") || strings.HasPrefix(w, "css:") {
			t.Errorf("RawHTML off but got %q", w)
		}
	}
}

// TestKeysMatchTokensCorpus: the same on every TEST message, long ones
// included (the key set grows past its starting size).
func TestKeysMatchTokensCorpus(t *testing.T) {
	tok := NewTokenizer(DefaultTokenizerOptions())
	longest := 0
	for _, m := range loadCorpus(t, "test.tar.gz") {
		toks := tok.Tokens(parseDoc(m.raw))
		keys := tok.Keys(parseDoc(m.raw))
		longest = max(longest, len(keys))
		if len(keys) != len(toks) {
			t.Fatalf("%s: %d keys for %d tokens", m.name, len(keys), len(toks))
		}
		for i := range toks {
			if keys[i] != KeyOf(toks[i]) {
				t.Fatalf("%s: key %d differs", m.name, i)
			}
		}
	}
	if longest <= keySetMin/2 {
		t.Errorf("longest message has %d tokens: the key set never grew", longest)
	}
}

// TestKeySet checks the open-addressing set against a map: key 0,
// duplicates, growth, and reuse after reset.
func TestKeySet(t *testing.T) {
	var h keySet
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 3; round++ {
		want := map[Key]bool{}
		n := []int{10, 3 * keySetMin, 20 * keySetMin}[round]
		for i := 0; i < n; i++ {
			k := Key(r.Uint64())
			switch i % 5 {
			case 0:
				k = 0
			case 1:
				k = Key(i % 7 << 20) // same low bits, many collisions
			}
			if got := h.insert(k); got != !want[k] {
				t.Fatalf("round %d insert %x: new=%v, want %v", round, k, got, !want[k])
			}
			want[k] = true
		}
		for k := range want {
			if h.insert(k) {
				t.Fatalf("round %d: %x lost", round, k)
			}
		}
		h.reset()
	}
}

// TestTokenizeWrappedJapanese: mail wraps Japanese lines anywhere, mid-
// word, and spammers space words out; a single line break (CRLF or LF) or
// space (ASCII or ideographic) between two CJK characters keeps the bigram
// across it, a blank line (a new paragraph), two spaces, a Latin word or
// punctuation at the break do not.
func TestTokenizeWrappedJapanese(t *testing.T) {
	tok := NewTokenizer(DefaultTokenizerOptions())
	tests := []struct {
		body      string
		want, not []string
	}{
		{"本日の会\r\n議は中止です", []string{"会議", "議は", "本日"}, []string{"会\r\n議"}},
		{"本日の会\n議は中止です", []string{"会議"}, nil},
		{"激\nA安", nil, []string{"激A", "激安"}},
		{"会議\r\n\r\n議事録", []string{"会議", "議事"}, []string{"議議"}},
		{"会議。\r\n議事録", []string{"会議", "議事"}, []string{"議議"}},
		{"あ\r\nい", []string{"あい"}, []string{"あ", "い"}},
		{"口座　確認", []string{"口座", "座確", "確認"}, nil},
		{"口 座 確 認 を", []string{"口座", "座確", "確認", "認を"}, []string{"口", "座"}},
		{"会議  議事", []string{"会議", "議事"}, []string{"議議"}},
		{"激", []string{"激"}, nil},
	}
	for _, tt := range tests {
		raw := "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + tt.body + "\r\n"
		got := tok.Tokens(ParseDoc(strings.NewReader(raw)))
		for _, w := range tt.want {
			if !slices.Contains(got, w) {
				t.Errorf("%q: missing token %q in %q", tt.body, w, got)
			}
		}
		for _, n := range tt.not {
			if slices.Contains(got, n) {
				t.Errorf("%q: unexpected token %q in %q", tt.body, n, got)
			}
		}
	}
}

// TestTokenizeWidths: widths are folded as the text filter folds them. A
// word in full-width Latin was a token of its own, and half-width katakana
// fell apart at its sound marks (ﾞ ﾟ ｰ are not katakana), so that
// ﾊﾟｽﾜｰﾄﾞ gave ﾊ, ｽﾜ and ﾄ, none of which パスワード gives.
func TestTokenizeWidths(t *testing.T) {
	tok := NewTokenizer(DefaultTokenizerOptions())
	body := func(s string) []string { return tok.Tokens(&Doc{Parts: []Part{{ContentType: "text/plain", Text: s}}}) }
	for _, tc := range []struct{ text, same string }{
		{"ﾊﾟｽﾜｰﾄﾞ ｸﾚｼﾞｯﾄｶｰﾄﾞ ｾｰﾙ", "パスワード クレジットカード セール"},
		{"ＦＲＥＥ ＭＯＮＥＹ Ｖｉａｇｒａ", "FREE MONEY Viagra"},
		{"ｶﾀｶﾅ ｶﾞｲﾄﾞ\r\nﾊﾟｽﾜｰﾄﾞ", "カタカナ ガイド\r\nパスワード"},
		{"カﾞイド", "ガイド"}, // a half-width mark after a full-width kana
		{"iPhone15が当選 ＰａｙＰａｙ残高￥１０００", "iPhone15が当選 PayPay残高¥1000"},
	} {
		if got, want := body(tc.text), body(tc.same); !slices.Equal(got, want) {
			t.Errorf("%q: tokens %q, want those of %q: %q", tc.text, got, tc.same, want)
		}
	}
}

// TestFoldWidth: what is not in the Halfwidth and Fullwidth Forms block is
// left as it is, a mark after a character it does not compose with too.
func TestFoldWidth(t *testing.T) {
	for in, want := range map[string]string{
		"plain ASCII, 漢字 and かな": "plain ASCII, 漢字 and かな",
		"ｱｲｳ\uff9e":              "アイヴ",
		"x\uff9e":                "x\u3099",
		"\uff9eｶ":                "\u3099カ",
		"ｶ\uff9e\uff9e":          "ガ\u3099",
		"\ufffd\ufeffＡ":          "\ufffd\ufeffA",
		"ａ・ｂ":                    "a・b",
	} {
		if got := foldWidth(in); got != want {
			t.Errorf("foldWidth(%+q) = %+q, want %+q", in, got, want)
		}
	}
}
