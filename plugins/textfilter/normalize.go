package textfilter

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// normalize makes text and patterns comparable: Unicode NFKC (UAX #15)
// turns full-width Latin into ASCII and half-width katakana into full-width,
// case folding (Unicode 3.13) removes case, and runs of white space become
// one space so a phrase matches across line breaks.
//
// Folding goes through x/text/cases only for the characters that need it:
// ASCII is lower-cased directly and CJK, kana and Hangul have no case, which
// keeps Japanese text several times faster than a full cases.Fold pass.
func normalize(s string) string {
	s = norm.NFKC.String(s)
	var b strings.Builder
	b.Grow(len(s))
	space := false
	other := -1 // start of a pending run of characters that need full folding
	flush := func(end int) {
		if other >= 0 {
			b.WriteString(cases.Fold().String(s[other:end]))
			other = -1
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			flush(i)
			i++
			if asciiSpace[c] {
				space = true
				continue
			}
			writeSpace(&b, &space)
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b.WriteByte(c)
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case unicode.IsSpace(r):
			flush(i)
			space = true
		case caseless(r):
			flush(i)
			writeSpace(&b, &space)
			b.WriteString(s[i : i+n])
		default:
			if other < 0 {
				writeSpace(&b, &space)
				other = i
			}
		}
		i += n
	}
	flush(len(s))
	return b.String()
}

var asciiSpace = [utf8.RuneSelf]bool{' ': true, '\t': true, '\n': true, '\r': true, '\v': true, '\f': true}

func writeSpace(b *strings.Builder, space *bool) {
	if *space && b.Len() > 0 {
		b.WriteByte(' ')
	}
	*space = false
}

// caseless reports scripts without case: CJK punctuation, kana, CJK
// ideographs, Hangul, and the half/full-width block's remaining forms.
func caseless(r rune) bool {
	return r >= 0x3000 && r <= 0x9fff || r >= 0xac00 && r <= 0xd7af || r >= 0xf900 && r <= 0xfaff ||
		r >= 0xff5b && r <= 0xffef || r >= 0x20000 && r <= 0x3ffff
}

// normRegexp applies NFKC to a regular expression: full-width letters in a
// pattern then match like their ASCII forms in normalised text.
func normRegexp(expr string) string {
	return norm.NFKC.String(expr)
}
