package rules

import "go.yaml.in/yaml/v3"

// scalarPos finds where rune i of scalar node n's value is written in the
// file (lines, split at "\n"), by reading the scalar's source again the way
// YAML decoded it (YAML 1.2 7.3, 7.4, 8.1): a line break folded into a
// space (plain, quoted and ">" scalars), the indentation and the spaces
// around a break dropped, an escape (\u00e9, \" or a doubled single quote)
// that stands for one character, an escaped line break that stands for
// none. So a problem in the second line of a folded `when: >-` is reported
// on that line, not on the header line with its offset in the joined
// value. i may be len(value): the position just after it. ok is false when
// the source does not read back as the value (no lines, or a form not
// foreseen here); the caller then falls back to an estimate.
func scalarPos(n *yaml.Node, lines []string, i int) (line, col int, ok bool) {
	if n.Line < 1 || n.Line > len(lines) {
		return 0, 0, false
	}
	u := &cursor{lines: lines, l: n.Line - 1, c: n.Column - 1}
	double := n.Style&yaml.DoubleQuotedStyle != 0
	single := n.Style&yaml.SingleQuotedStyle != 0
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		u.l, u.c = n.Line, 0 // the content starts on the line after the header
	case double || single:
		u.c++ // after the opening quote
	}
	for k, r := range []rune(n.Value) {
		if !isSpace(r) {
			u.skipSpace(double)
		}
		if k == i {
			return u.l + 1, u.c + 1, true
		}
		switch at := u.at(); {
		case double && at == '\\':
			u.c += escapeLen(u.peek(1))
		case single && at == '\'':
			u.c += 2 // '' is one quote
		case isSpace(r) && isSpace(at):
			u.skipSpace(double) // a run of blanks and breaks, folded or kept
		case isSpace(r):
			// a space the source has no blank for (a literal block's extra
			// indentation, already skipped): nothing to consume
		case at == r:
			u.c++
		default:
			return 0, 0, false
		}
	}
	if i == len([]rune(n.Value)) {
		return u.l + 1, u.c + 1, true
	}
	return 0, 0, false
}

// cursor walks a file's lines rune by rune; a line's end reads as '\n'
// and the end of the file as -1.
type cursor struct {
	lines []string
	l, c  int // 0-based line and rune index
	runes []rune
	ofL   int // the line runes holds, plus 1 (0: none yet)
}

func (u *cursor) line() []rune {
	if u.ofL != u.l+1 {
		u.runes, u.ofL = []rune(u.lines[u.l]), u.l+1
	}
	return u.runes
}

func (u *cursor) peek(k int) rune {
	if u.l >= len(u.lines) {
		return -1
	}
	rs := u.line()
	switch {
	case u.c+k < len(rs):
		return rs[u.c+k]
	case u.c+k == len(rs):
		return '\n'
	}
	return -1
}

func (u *cursor) at() rune { return u.peek(0) }

// skipSpace passes blanks and line breaks, and in a double-quoted scalar
// the escaped line breaks, which stand for nothing.
func (u *cursor) skipSpace(double bool) {
	for u.l < len(u.lines) {
		switch r := u.at(); {
		case r == '\n':
			u.l, u.c = u.l+1, 0
		case isSpace(r):
			u.c++
		case double && r == '\\' && u.peek(1) == '\n':
			u.l, u.c = u.l+1, 0
		default:
			return
		}
	}
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

// escapeLen is the length of a double-quoted escape whose letter is e
// (YAML 1.2 5.7).
func escapeLen(e rune) int {
	switch e {
	case 'x':
		return 4
	case 'u':
		return 6
	case 'U':
		return 10
	}
	return 2
}
