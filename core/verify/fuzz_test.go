package verify

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzClean: whatever the server behind says (its reply text comes off the
// network), what reaches our reply is one line of printable ASCII, at most
// maxText octets and the "..." that says it was cut, and a text that
// needed no change is kept as it was.
func FuzzClean(f *testing.F) {
	for _, s := range []string{
		"550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in local recipient table",
		"550-5.1.1 first line; 550 5.1.1 second line",
		"550 5.1.1 \x00\r\n\x7f\xff\xfe",
		"550 5.1.1 宛先のメールボックスがありません",
		strings.Repeat("x", maxText) + "y",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := clean(s)
		body, cut := strings.CutSuffix(got, "...")
		if len(s) <= maxText && cut && !strings.HasSuffix(s[:min(len(s), maxText)], "...") {
			t.Fatalf("%q cut, though within %d octets: %q", s, maxText, got)
		}
		if len(body) > maxText {
			t.Fatalf("%q: %d octets before the ellipsis, want at most %d", s, len(body), maxText)
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; c < 0x20 || c > 0x7e {
				t.Fatalf("%q: byte %#x at %d in %q", s, c, i, got)
			}
		}
		printable := utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e })
		if printable && len(s) <= maxText && got != s {
			t.Fatalf("printable %q changed to %q", s, got)
		}
	})
}
