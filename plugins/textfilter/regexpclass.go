package textfilter

import (
	"cmp"
	"fmt"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normClasses rewrites the bracketed character classes of a regular
// expression for normalised text. NFKC applied to the text of a class
// normalises each end of a range on its own, which breaks the range: the
// half-width katakana [ｦ-ﾝ] (U+FF66-U+FF9D, the whole JIS X 0201 kana)
// became [ヲ-ン], two characters, and [ｦ-ﾟ] became the reversed range
// ヲ-U+309A, which does not compile. A class is a set, so it is normalised
// as one: it also matches the NFKC forms of its members (UAX #15), and the
// characters that compose from members alone (ｶ and ﾞ are カ and U+3099
// after NFKC, which compose to ガ, so [ｦ-ﾟ]+ matches ガイド as it matches
// ｶﾞｲﾄﾞ). The class comes out as escapes, which NFKC leaves alone.
//
// A class that holds the last code point is one written as a negation
// ([^...], \W, \P{Han}, [:^alpha:]): it is normalised from the side the
// admin listed and negated again, so that [\W] does not take in the a of
// the full-width ａ and [^ｦ-ﾝ] does not match the カ of a normalised ｶ.
//
// Classes that NFKC does not touch are left as written.
func normClasses(expr string) string {
	var b strings.Builder
	copied := 0
	for i := 0; i < len(expr); {
		switch expr[i] {
		case '\\':
			if strings.HasPrefix(expr[i:], `\Q`) { // literal text up to \E
				end := strings.Index(expr[i+2:], `\E`)
				if end < 0 {
					i = len(expr)
					continue
				}
				i += 2 + end + 2
				continue
			}
			i += 2 // a rune's continuation bytes are never '\\' or '['
		case '[':
			end := classEnd(expr, i)
			if end < 0 {
				i = len(expr) // unclosed: the compiler says so
				continue
			}
			if class, ok := normClass(expr[i:end]); ok {
				b.WriteString(expr[copied:i])
				b.WriteString(class)
				copied = end
			}
			i = end
		default:
			i++
		}
	}
	if copied == 0 {
		return expr
	}
	b.WriteString(expr[copied:])
	return b.String()
}

// classEnd returns the end of the class opening at expr[i], after its
// closing bracket, or -1. As in RE2 syntax, a ']' first in the class (after
// an optional '^') is a member, and [:alpha:] is a class name.
func classEnd(expr string, i int) int {
	j := i + 1
	if j < len(expr) && expr[j] == '^' {
		j++
	}
	if j < len(expr) && expr[j] == ']' {
		j++
	}
	for j < len(expr) {
		switch {
		case expr[j] == '\\':
			j += 2
		case strings.HasPrefix(expr[j:], "[:"):
			end := strings.Index(expr[j+2:], ":]")
			if end < 0 {
				return -1
			}
			j += 2 + end + 2
		case expr[j] == ']':
			return j + 1
		default:
			j++
		}
	}
	return -1
}

// normClass returns class (one bracketed class) normalised, or false when
// it needs no change or does not parse (then the compiler reports it, in
// the admin's own text).
func normClass(class string) (string, bool) {
	neg := strings.HasPrefix(class, "[^")
	if neg {
		class = "[" + class[2:]
	}
	re, err := syntax.Parse(class, syntax.Perl)
	if err != nil {
		return "", false
	}
	var set []rune
	switch re.Op {
	case syntax.OpCharClass:
		set = re.Rune
	case syntax.OpLiteral: // a class of one character, or of one with its case partner
		for _, r := range re.Rune {
			set = addRange(set, r, r)
			for f := unicode.SimpleFold(r); re.Flags&syntax.FoldCase != 0 && f != r; f = unicode.SimpleFold(f) {
				set = addRange(set, f, f)
			}
		}
		set = mergeRanges(set)
	default:
		return "", false
	}
	if len(set) == 0 || set[len(set)-1] < utf8.RuneSelf {
		return "", false // ASCII is NFKC's own
	}
	if set[len(set)-1] == unicode.MaxRune {
		set, neg = negateRanges(set), !neg
	}
	out, forms := nfkcClass(set)
	if len(forms) == 0 && slices.Equal(out, set) {
		return "", false
	}
	var b strings.Builder
	if !neg && len(forms) > 0 {
		// A member NFKC makes several characters (① is 1, but ⑩ is 10,
		// ㈱ is (株)) is matched as that text. A negated class matches one
		// character and cannot exclude a text of several: it excludes
		// the forms of one character only.
		b.WriteString("(?:")
		for _, f := range forms {
			for _, r := range f {
				writeClassRune(&b, r)
			}
			b.WriteByte('|')
		}
	}
	b.WriteByte('[')
	if neg {
		b.WriteByte('^')
	}
	for i := 0; i < len(out); i += 2 {
		writeClassRune(&b, out[i])
		if out[i+1] != out[i] {
			b.WriteByte('-')
			writeClassRune(&b, out[i+1])
		}
	}
	b.WriteByte(']')
	if !neg && len(forms) > 0 {
		b.WriteByte(')')
	}
	return b.String(), true
}

// maxClassForms bounds the forms of several characters a class matches as
// alternatives. Each costs the matcher at every position of the text: the
// 316 of [\p{So}] made it 50 times slower. Past the bound (a Unicode
// category, not the ranges an admin lists, as ①-⑳ with its 11) a class
// matches the forms of one character only, as \p{So} outside a class does.
const maxClassForms = 64

// nfkcClass returns set (sorted rune ranges) with the NFKC forms of its
// members added, and the characters that compose from them, and the forms
// of several characters not all in that class (a form whose characters all
// are, as ﬁ's fi in \pL, is matched by a repetition of the class). Members
// NFKC changes stay: they never occur in normalised text, and keeping them
// keeps the written ranges whole.
func nfkcClass(set []rune) (out []rune, forms []string) {
	t := nfkcTables()
	out = slices.Clone(set)
	var multi []string
	for i := 0; i < len(set); i += 2 {
		lo, _ := slices.BinarySearch(t.changed, set[i])
		for j := lo; j < len(t.changed) && t.changed[j] <= set[i+1]; j++ {
			if f := t.form[j]; utf8.RuneCountInString(f) == 1 {
				r, _ := utf8.DecodeRuneInString(f)
				out = addRange(out, r, r)
			} else {
				multi = append(multi, f)
			}
		}
	}
	out = mergeRanges(out)
	if intersects(out, t.combining) {
		var comp []rune
		for _, c := range t.composed {
			if !inRanges(out, c.r) && allIn(out, c.parts) {
				comp = addRange(comp, c.r, c.r)
			}
		}
		out = mergeRanges(append(out, comp...))
	}
	for _, f := range multi {
		if !allIn(out, []rune(f)) && !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	if len(forms) > maxClassForms {
		forms = nil
	}
	// Longer first: alternatives are tried in order (RE2's leftmost-first).
	slices.SortFunc(forms, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	return out, forms
}

// writeClassRune writes r for a class: letters and digits of ASCII as they
// are, anything else escaped, so that neither NFKC nor the class syntax
// reads it.
func writeClassRune(b *strings.Builder, r rune) {
	if r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
		b.WriteRune(r)
		return
	}
	fmt.Fprintf(b, `\x{%X}`, r)
}

// nfkcTable holds what normalising a class needs, for every code point:
// the ones normalisation changes with their forms, the ones that may
// compose with a character before them, and the characters that compose.
type nfkcTable struct {
	changed   []rune   // sorted
	form      []string // nfkc of changed[i]
	combining []rune   // sorted ranges
	composed  []composition
}

type composition struct {
	r     rune
	parts []rune // its canonical decomposition
}

// nfkcMaxRune bounds the walk over code points: no character above the
// Supplementary Ideographic Plane (its CJK compatibility ideographs end at
// U+2FA1D) is changed by NFKC or composes (TestNFKCTableBound).
const nfkcMaxRune = 0x2ffff

// nfkcTables is built on first use, once (40-80 ms): most lists hold no
// class with a character outside ASCII, and do not pay for it.
var nfkcTables = sync.OnceValue(func() *nfkcTable {
	t := &nfkcTable{}
	var buf [utf8.UTFMax]byte
	for r := rune(utf8.RuneSelf); r <= nfkcMaxRune; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		b := buf[:utf8.EncodeRune(buf[:], r)]
		if !norm.NFKC.IsNormal(b) || strings.ContainsRune(jisFolded, r) {
			if f := nfkc(string(b)); f != string(b) {
				t.changed = append(t.changed, r)
				t.form = append(t.form, f)
				continue
			}
		}
		if !norm.NFC.Properties(b).BoundaryBefore() {
			t.combining = addRange(t.combining, r, r)
		}
		if !norm.NFD.IsNormal(b) {
			t.composed = append(t.composed, composition{r, []rune(norm.NFD.String(string(b)))})
		}
	}
	t.combining = mergeRanges(t.combining)
	return t
})

// Rune ranges as regexp/syntax keeps them: pairs lo, hi, sorted and merged.

func addRange(set []rune, lo, hi rune) []rune {
	if n := len(set); n > 0 && set[n-1]+1 >= lo && set[n-2] <= lo {
		set[n-1] = max(set[n-1], hi) // the common case: appended in order
		return set
	}
	return append(set, lo, hi)
}

func mergeRanges(set []rune) []rune {
	pairs := make([][2]rune, 0, len(set)/2)
	for i := 0; i < len(set); i += 2 {
		pairs = append(pairs, [2]rune{set[i], set[i+1]})
	}
	slices.SortFunc(pairs, func(a, b [2]rune) int { return cmp.Compare(a[0], b[0]) })
	out := set[:0:0]
	for _, p := range pairs {
		if n := len(out); n > 0 && out[n-1]+1 >= p[0] {
			out[n-1] = max(out[n-1], p[1])
			continue
		}
		out = append(out, p[0], p[1])
	}
	return out
}

func negateRanges(set []rune) []rune {
	var out []rune
	next := rune(0)
	for i := 0; i < len(set); i += 2 {
		if set[i] > next {
			out = append(out, next, set[i]-1)
		}
		next = set[i+1] + 1
	}
	if next <= unicode.MaxRune {
		out = append(out, next, unicode.MaxRune)
	}
	return out
}

func inRanges(set []rune, r rune) bool {
	i, found := slices.BinarySearch(set, r) // the index of the first bound >= r
	return found || i%2 == 1
}

func allIn(set []rune, rs []rune) bool {
	for _, r := range rs {
		if !inRanges(set, r) {
			return false
		}
	}
	return true
}

func intersects(a, b []rune) bool {
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i+1] < b[j]:
			i += 2
		case b[j+1] < a[i]:
			j += 2
		default:
			return true
		}
	}
	return false
}
