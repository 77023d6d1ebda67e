package textfilter

import (
	"encoding/base64"
	"testing"
	"unicode"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestIgnorableTable checks ignorable against the derivation of
// Default_Ignorable_Code_Point in Unicode's DerivedCoreProperties.txt,
// computed from the unicode package's tables.
func TestIgnorableTable(t *testing.T) {
	derived := func(r rune) bool {
		if unicode.Is(unicode.White_Space, r) || r >= 0xfff9 && r <= 0xfffb || r >= 0x13430 && r <= 0x1343f ||
			unicode.Is(unicode.Prepended_Concatenation_Mark, r) {
			return false
		}
		return unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) || unicode.Is(unicode.Cf, r) ||
			unicode.Is(unicode.Variation_Selector, r)
	}
	bad := 0
	for r := rune(0); r <= unicode.MaxRune && bad < 10; r++ {
		if ignorable(r) != derived(r) {
			t.Errorf("ignorable(%U) = %v, derived %v", r, ignorable(r), derived(r))
			bad++
		}
	}
}

// TestInvisibleCharacters: characters that render as nothing must not
// hide a word from the filter, in plain text, in HTML (as entities) and in
// the Subject.
func TestInvisibleCharacters(t *testing.T) {
	cfg := map[string]any{"lists": []any{map[string]any{"name": "w", "patterns": []any{"viagra", "未承諾広告", "free money"}}}}
	text, subject := NewText(), NewSubject()
	configure(t, text, "testdata", cfg)
	configure(t, subject, "testdata", cfg)
	tests := []struct{ name, ctype, body, want string }{
		{"soft hyphen", "text/plain; charset=utf-8", "buy vi\u00adag\u00adra now", "w:viagra"},
		{"zero-width space", "text/plain; charset=utf-8", "vi\u200bagra", "w:viagra"},
		{"zero-width joiner in Japanese", "text/plain; charset=utf-8", "【未承\u200d諾\u2060広告】", "w:未承諾広告"},
		{"BOM and variation selector", "text/plain; charset=utf-8", "vi\ufeffag\ufe0fra", "w:viagra"},
		{"bidi controls around a space", "text/plain; charset=utf-8", "free\u202e \u202cmoney", "w:free money"},
		{"HTML soft hyphen entity", "text/html; charset=utf-8", "<p>v&shy;i&#173;a&#x200B;gra</p>", "w:viagra"},
		{"full-width with zero-width space", "text/plain; charset=utf-8", "ＶＩ\u200bＡＧＲＡ", "w:viagra"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := "Subject: hello\r\nContent-Type: " + tc.ctype + "\r\n\r\n" + tc.body + "\r\n"
			res := check(t, text, sdk.NewBytesMessage(nil, []byte(raw)))
			if res.Verdict != sdk.VerdictFail || len(res.Tags) != 1 || res.Tags[0] != tc.want {
				t.Errorf("text stage: %v %q, want fail %q", res.Verdict, res.Tags, tc.want)
			}
			subj := "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(tc.body)) + "?="
			if tc.ctype != "text/plain; charset=utf-8" {
				return
			}
			res = check(t, subject, sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: subj}}, []byte("Subject: "+subj+"\r\n\r\nx\r\n")))
			if res.Verdict != sdk.VerdictFail || len(res.Tags) != 1 || res.Tags[0] != tc.want {
				t.Errorf("subject stage: %v %q, want fail %q", res.Verdict, res.Tags, tc.want)
			}
		})
	}
}
