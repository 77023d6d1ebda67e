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
// case folding (Unicode 3.13) removes case, characters that render as
// nothing are removed (as NFKC_Casefold does), so "vi<soft hyphen>agra"
// and a zero-width space inside 未承諾広告 still match, and runs of white
// space become one space so a phrase matches across line breaks. White
// space between two Japanese or Chinese characters (kana, ideographs) is
// dropped: those scripts put no space between words, a mailer wraps their
// lines anywhere, and a spammer spaces them out (口座　確認) to break a word.
//
// Folding goes through x/text/cases only for the characters that need it:
// ASCII is lower-cased directly and CJK, kana and Hangul have no case, which
// keeps Japanese text several times faster than a full cases.Fold pass.
func normalize(s string) string {
	s = nfkc(s)
	var b strings.Builder
	b.Grow(len(s))
	space := false
	prevCJK := false // the last character written is kana or an ideograph
	other := -1      // start of a pending run of characters that need full folding
	flush := func(end int) {
		b.WriteString(cases.Fold().String(s[other:end]))
		other = -1
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if other >= 0 {
				flush(i)
			}
			i++
			if asciiSpace[c] {
				space = true
				continue
			}
			writeSpace(&b, &space)
			prevCJK = false
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b.WriteByte(c)
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case ignorable(r):
			if other >= 0 {
				flush(i)
			}
		case caseless(r): // copied in one go up to the next other character
			if other >= 0 {
				flush(i)
			}
			if prevCJK && unspaced(r) {
				space = false
			}
			writeSpace(&b, &space)
			j, last := i+n, r
			for j < len(s) && s[j] >= utf8.RuneSelf {
				r2, n2 := utf8.DecodeRuneInString(s[j:])
				if !caseless(r2) || ignorable(r2) {
					break
				}
				j, last = j+n2, r2
			}
			b.WriteString(s[i:j])
			n, prevCJK = j-i, unspaced(last)
		case unicode.IsSpace(r):
			if other >= 0 {
				flush(i)
			}
			space = true
		default:
			if other < 0 {
				writeSpace(&b, &space)
				other = i
			}
			prevCJK = false
		}
		i += n
	}
	if other >= 0 {
		flush(len(s))
	}
	return b.String()
}

var asciiSpace = [utf8.RuneSelf]bool{' ': true, '\t': true, '\n': true, '\r': true, '\v': true, '\f': true}

func writeSpace(b *strings.Builder, space *bool) {
	if *space && b.Len() > 0 {
		b.WriteByte(' ')
	}
	*space = false
}

// unspaced reports the characters of scripts written without spaces
// between words: kana (with the prolonged sound mark and iteration marks)
// and CJK ideographs. Hangul is written with spaces, and punctuation may
// stand apart.
func unspaced(r rune) bool {
	return r >= 0x3041 && r <= 0x30ff || r == 0x3005 || r >= 0x3400 && r <= 0x9fff ||
		r >= 0xf900 && r <= 0xfaff || r >= 0x20000 && r <= 0x3ffff
}

// ignorable reports Unicode's Default_Ignorable_Code_Point
// (DerivedCoreProperties.txt): soft hyphen, zero-width space, joiners and
// non-joiners, bidi controls, word joiner and invisible operators, Hangul
// fillers, variation selectors, the BOM and tag characters. They render as
// nothing, so a spammer puts them inside a word to break it for a filter.
func ignorable(r rune) bool {
	switch {
	case r < 0xad:
		return false
	case r < 0x2000:
		return r == 0xad || r == 0x34f || r == 0x61c || r == 0x115f || r == 0x1160 || r == 0x17b4 || r == 0x17b5 ||
			r >= 0x180b && r <= 0x180f
	case r < 0x3000:
		return r >= 0x200b && r <= 0x200f || r >= 0x202a && r <= 0x202e || r >= 0x2060 && r <= 0x206f
	case r < 0xfe00:
		return r == 0x3164
	case r < 0x10000:
		return r <= 0xfe0f || r == 0xfeff || r == 0xffa0 || r >= 0xfff0 && r <= 0xfff8
	}
	return r >= 0x1bca0 && r <= 0x1bca3 || r >= 0x1d173 && r <= 0x1d17a || r >= 0xe0000 && r <= 0xe0fff
}

// caseless reports scripts without case: CJK punctuation, kana, CJK
// ideographs, Hangul, and the half/full-width block's remaining forms.
func caseless(r rune) bool {
	return r >= 0x3000 && r <= 0x9fff || r >= 0xac00 && r <= 0xd7af || r >= 0xf900 && r <= 0xfaff ||
		r >= 0xff5b && r <= 0xffef || r >= 0x20000 && r <= 0x3ffff
}

// nfkc is norm.NFKC.String after jisFold (none of whose characters is
// stable below), fast: it skips the runs NFKC cannot change. x/text's
// normaliser looks up every CJK character (about 13 MB/s here), while mail
// text is mostly ASCII, kana and ideographs, which NFKC leaves alone. A
// character NFKC may change goes through it together with the character
// before it, since a combining mark composes with the starter before it
// (か + U+3099 = が); no stable character below composes with what follows.
func nfkc(s string) string {
	var out strings.Builder
	copied, prev := 0, -1 // s[:copied] is emitted; prev starts the previous stable rune
	for i := 0; i < len(s); {
		r, n := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(s[i:])
		}
		if nfkcStable(r) {
			prev, i = i, i+n
			continue
		}
		start := i
		if prev >= copied {
			start = prev
		}
		j := i + n
		for j < len(s) {
			r2, n2 := utf8.DecodeRuneInString(s[j:])
			if nfkcStable(r2) {
				break
			}
			j += n2
		}
		if out.Cap() == 0 {
			out.Grow(len(s))
		}
		out.WriteString(s[copied:start])
		out.WriteString(norm.NFKC.String(jisFold.Replace(s[start:j])))
		copied, prev, i = j, -1, j
	}
	if copied == 0 {
		return s
	}
	out.WriteString(s[copied:])
	return out.String()
}

// nfkcStable lists characters that NFKC maps to themselves and that are
// never the second half of a composition: ASCII, hiragana, katakana, the
// prolonged sound mark, CJK unified ideographs and common CJK punctuation.
func nfkcStable(r rune) bool {
	return r < utf8.RuneSelf || r >= 0x3041 && r <= 0x3096 || r >= 0x30a1 && r <= 0x30fa || r == 0x30fc ||
		r >= 0x4e00 && r <= 0x9fff || r >= 0x3001 && r <= 0x3002 || r >= 0x3008 && r <= 0x3011
}

// jisFold makes one character of each pair that a JIS code decodes to
// differently by whose table decodes it: x/text (as Windows' CP932 and the
// WHATWG tables) reads JIS 0x2141 (the wave dash of 10〜20時) as U+FF5E,
// which NFKC would make an ASCII tilde, while JIS itself, macOS and most
// input methods on Linux write U+301C; likewise ∥ (U+2225, U+2016), the
// horizontal bar (U+2015, U+2014) and the minus sign (U+FF0D, which NFKC
// makes '-', and U+2212). Applied before NFKC (nfkc keeps these characters
// out of its fast path), so that a pattern matches the same JIS character
// in ISO-2022-JP, Shift_JIS, EUC-JP and UTF-8 mail alike, and the wave
// dash does not match every '~' of a URL.
var jisFold = strings.NewReplacer("\uff5e", "\u301c", "\u2016", "\u2225", "\u2014", "\u2015", "\u2212", "-")

// jisFolded holds the characters jisFold replaces.
const jisFolded = "\uff5e\u2016\u2014\u2212"

// jisFoldRegexp is jisFold for a regular expression: the minus signs are
// left to normRegexp, which writes them escaped.
var jisFoldRegexp = strings.NewReplacer("\uff5e", "\u301c", "\u2016", "\u2225", "\u2014", "\u2015")

// normRegexp applies NFKC to a regular expression: full-width letters in a
// pattern then match like their ASCII forms in normalised text.
//
// A character that NFKC turns into ASCII regexp syntax (full-width ？ to ?,
// ［ to [, （ to (, ＊ to *, ＋ to +, ．to ., ｜ to |, and so on) was
// written as text by a Japanese admin, not as an operator: it becomes the
// escaped ASCII character, so that re:本当？ matches 本当? and not 本 or
// 本当, and re:［広告］ matches [広告] and not any one of its characters.
// A character class is normalised as a set (normClasses), not as text.
func normRegexp(expr string) string {
	var b strings.Builder
	for _, r := range jisFoldRegexp.Replace(expr) {
		if r == '\u2212' {
			r = '\uff0d' // the JIS minus either way: written \- below
		}
		if r >= utf8.RuneSelf {
			// Compatibility forms only (no composition involved), so
			// one at a time; the rest goes through NFKC whole below.
			// A minus (－ or −) is text too: [有－株] is three
			// characters, not a range of thousands.
			if n := norm.NFKC.String(string(r)); len(n) == 1 && strings.ContainsRune(`\.+*?()|[]{}^$-`, rune(n[0])) {
				b.WriteByte('\\')
				b.WriteString(n)
				continue
			}
		}
		b.WriteRune(r)
	}
	return norm.NFKC.String(normClasses(b.String()))
}
