package main

import "strings"

// termSafe makes text that came from a message or a client (a decoded
// Subject, a HELO name, a stage's reason) safe to print on an admin's
// terminal: control characters, DEL and the C1 controls are shown in caret
// notation (ESC as ^[), as `cat -v` shows them, so that a subject cannot
// retitle the terminal, clear it, recolour it or forge lines of the
// listing. A tab stays.
func termSafe(s string) string { return caret(s, false) }

// termSafeLines is termSafe for a block of lines (a message header): line
// ends stay.
func termSafeLines(s string) string { return caret(s, true) }

func caret(s string, lines bool) string {
	if strings.IndexFunc(s, func(r rune) bool { return unsafeRune(r, lines) }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !unsafeRune(r, lines):
			b.WriteRune(r)
		case r < 0x20:
			b.WriteByte('^')
			b.WriteByte(byte(r) + '@')
		case r == 0x7f:
			b.WriteString("^?")
		default: // C1: U+0080-U+009F
			b.WriteString("M-^")
			b.WriteByte(byte(r-0x80) + '@')
		}
	}
	return b.String()
}

func unsafeRune(r rune, lines bool) bool {
	switch {
	case r == '\t', lines && r == '\n':
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	}
	return false
}
