package textfilter

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestMaxTextBytes: each text is matched up to max_text_bytes (1 MiB by
// default); a word past it is not, and the tag says text went unmatched,
// for a rule to act on. A larger max_text_bytes reaches it.
func TestMaxTextBytes(t *testing.T) {
	pad := strings.Repeat("ordinary words of a long newsletter. ", (3<<20)/37)
	raw := []byte("Subject: news\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + pad + "cheap viagra\r\n")
	msg := sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: "news"}}, raw)
	lists := []any{map[string]any{"name": "spam", "patterns": []any{"viagra"}}}
	for _, tc := range []struct {
		config  map[string]any
		verdict sdk.Verdict
		tags    []string
	}{
		{map[string]any{"lists": lists}, sdk.VerdictPass, []string{tagTextLimit}},
		{map[string]any{"lists": lists, "max_text_bytes": 4 << 20}, sdk.VerdictFail, []string{"spam:viagra"}},
	} {
		st := NewText()
		configure(t, st, "", tc.config)
		res := check(t, st, msg)
		if res.Verdict != tc.verdict || !slices.Equal(res.Tags, tc.tags) {
			t.Errorf("%v: %s %q, want %s %q", tc.config["max_text_bytes"], res.Verdict, res.Tags, tc.verdict, tc.tags)
		}
	}
}

// TestClipAtCharacter: a cut text ends on a whole character, so that the
// text matched is still valid UTF-8 (Japanese here: three bytes each).
func TestClipAtCharacter(t *testing.T) {
	texts := []string{strings.Repeat("迷惑", 1000), "short"}
	if !clip(texts, 1024) {
		t.Fatal("nothing cut")
	}
	if len(texts[0]) > 1024 || len(texts[0]) < 1021 || !utf8.ValidString(texts[0]) || texts[1] != "short" {
		t.Errorf("cut to %d bytes, valid %v; %q", len(texts[0]), utf8.ValidString(texts[0]), texts[1])
	}
}

// TestMaxTextBytesAfterNFKC: a text under max_text_bytes that NFKC makes
// longer (U+FDFA is 3 bytes and becomes 33) is matched only up to
// max_text_bytes of its normalised form, and tagged, so the bound holds
// for what is matched.
func TestMaxTextBytesAfterNFKC(t *testing.T) {
	text := strings.Repeat("\ufdfa", 1000) + "viagra" // 3,006 bytes; normalised, 33,006
	raw := []byte("Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n")
	msg := sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: "x"}}, raw)
	lists := []any{map[string]any{"name": "spam", "patterns": []any{"viagra"}}}
	st := NewText()
	configure(t, st, "", map[string]any{"lists": lists, "max_text_bytes": 4096})
	res := check(t, st, msg)
	if res.Verdict != sdk.VerdictPass || !slices.Equal(res.Tags, []string{tagTextLimit}) {
		t.Errorf("%s %q, want pass tagged %s", res.Verdict, res.Tags, tagTextLimit)
	}
}
