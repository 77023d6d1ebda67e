package bayes

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"
)

// FuzzTokenize runs hostile bytes through the MIME decoding and the
// tokenizer: no panic, the bounds hold, every token is valid UTF-8, and
// the key path (pooled sets, scratch lower-casing) gives KeyOf of each token.
func FuzzTokenize(f *testing.F) {
	files, _ := filepath.Glob("testdata/tokens/*.eml")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Subject: =?ISO-2022-JP?B?GyRCJEQbKEI=?=\n\n<a href='http://x.y/'>z</a>"))
	opt := DefaultTokenizerOptions()
	opt.MaxTokens = 300
	tok := NewTokenizer(opt)
	f.Fuzz(func(t *testing.T, data []byte) {
		toks := tok.Tokens(ParseDoc(bytes.NewReader(data)))
		if len(toks) > opt.MaxTokens {
			t.Fatalf("%d tokens > bound %d", len(toks), opt.MaxTokens)
		}
		seen := map[string]bool{}
		for _, tk := range toks {
			if !utf8.ValidString(tk) || tk == "" {
				t.Fatalf("bad token %q", tk)
			}
			if seen[tk] {
				t.Fatalf("duplicate token %q", tk)
			}
			seen[tk] = true
		}
		keys := tok.Keys(ParseDoc(bytes.NewReader(data)))
		if len(keys) != len(toks) {
			t.Fatalf("%d keys for %d tokens", len(keys), len(toks))
		}
		for i, tk := range toks {
			if keys[i] != KeyOf(tk) {
				t.Fatalf("key %d is not the key of %q", i, tk)
			}
		}
		_ = HashMessage(data)
		grams := gramFeatures(data, nil)
		gseen := map[uint32]bool{}
		for _, g := range grams {
			if g >= gramTable || gseen[g] {
				t.Fatalf("gram features not distinct and in the table: %v", grams)
			}
			gseen[g] = true
		}
		if again := gramFeatures(data, nil); !slices.Equal(again, grams) {
			t.Fatal("gram features differ on a second call (a bitmap left dirty)")
		}
		if len(grams) > gramBytes {
			t.Fatalf("%d gram features from at most %d bytes", len(grams), gramBytes)
		}
	})
}

// FuzzStripHTML: the HTML scanner never panics and returns valid UTF-8 for
// valid UTF-8 input.
func FuzzStripHTML(f *testing.F) {
	f.Add("<html><a href=\"http://a.b/\">x</a><script>y</script><!-- c -->&amp;</html>")
	f.Add("<a href=")
	f.Add("<style>")
	f.Fuzz(func(t *testing.T, s string) {
		text, _, _ := stripHTML(s)
		if utf8.ValidString(s) && !utf8.ValidString(text) {
			t.Fatalf("invalid UTF-8 out of valid input")
		}
	})
}

// FuzzMarkup: the markup scanner over raw HTML in any charset never panics
// and gives only non-empty, valid UTF-8 tokens.
func FuzzMarkup(f *testing.F) {
	f.Add("<html><body bgcolor=\"#fff\"><font color=red size=+2>x</font><!-- c --><p style='color: red; x'>")
	f.Add("<font color=\"\x82\xa0\x82\xa2\">")
	f.Add("<td width=")
	f.Add("<!--")
	opt := DefaultTokenizerOptions()
	tok := NewTokenizer(opt)
	f.Fuzz(func(t *testing.T, s string) {
		set := &tokenSet{seen: map[string]struct{}{}, max: opt.MaxTokens}
		tok.markup(set, s)
		for _, tk := range set.order {
			if !utf8.ValidString(tk) || tk == "" {
				t.Fatalf("bad token %q", tk)
			}
		}
	})
}
