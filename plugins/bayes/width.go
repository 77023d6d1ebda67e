package bayes

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// foldWidth folds the Halfwidth and Fullwidth Forms block (U+FF00-U+FFEF)
// to the characters they stand for, as the text filter's NFKC does:
// full-width ＦＲＥＥ is FREE, half-width ﾊﾟｽﾜｰﾄﾞ is パスワード. Without it one
// word learned in two widths was two tokens, and half-width kana fell
// apart, since its sound marks ﾞ ﾟ and ｰ are not katakana (UAX #11's
// Halfwidth forms; Unicode Scripts.txt gives them Common) and ended the
// run of kana. A voiced or semi-voiced mark is composed with the kana
// before it (UAX #15 canonical composition): ﾊﾟ is パ, one character, as
// a full-width text writes it.
//
// Only the block is folded, not all of NFKC: mail is mostly ASCII, kana
// and ideographs, which the scan for the block's lead bytes passes over.
func foldWidth(s string) string {
	i := widthFormAt(s, 0)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/2)
	copied := 0
	for i >= 0 {
		j, marks := i, false
		var folded [64]byte
		f := folded[:0]
		for j < len(s) {
			r, n := utf8.DecodeRuneInString(s[j:])
			if !isWidthForm(r) {
				break
			}
			if fr := width.LookupRune(r).Folded(); fr != 0 {
				r = fr
			}
			marks = marks || r == '\u3099' || r == '\u309a'
			f = utf8.AppendRune(f, r)
			j += n
		}
		start := i
		if marks && i > copied {
			// The mark may follow a full-width kana: compose with it.
			_, n := utf8.DecodeLastRuneInString(s[copied:i])
			start = i - n
			f = append([]byte(s[start:i]), f...)
		}
		b.WriteString(s[copied:start])
		if marks {
			f = norm.NFC.Bytes(f)
		}
		b.Write(f)
		copied = j
		i = widthFormAt(s, j)
	}
	b.WriteString(s[copied:])
	return b.String()
}

// widthFormAt is the index of the first character of the Halfwidth and
// Fullwidth Forms block in s[from:], or -1. In UTF-8 the block is
// EF BC 80 - EF BF AF, and 0xEF is rare in mail text.
func widthFormAt(s string, from int) int {
	for i := from; i < len(s); {
		k := strings.IndexByte(s[i:], 0xef)
		if k < 0 {
			return -1
		}
		i += k
		if r, _ := utf8.DecodeRuneInString(s[i:]); isWidthForm(r) {
			return i
		}
		i++
	}
	return -1
}

func isWidthForm(r rune) bool { return r >= 0xff00 && r <= 0xffef }
