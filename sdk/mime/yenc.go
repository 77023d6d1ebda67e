package mime

import (
	"bytes"
	"strings"
)

// yEnc (yEnc 1.3, www.yenc.org) is the binary encoding of Usenet, and
// Thunderbird's libmime turns a block of it in untyped text into an
// attachment (MimeUntypedText_yenc_begin_line_p), as it does a uuencoded
// file: a file sent so must be a part as that one is.
//
// A block starts with a "=ybegin" line whose last keyword is name= (the
// rest of the line: a name may hold spaces), a multi-part block follows it
// with a "=ypart" line, and a "=yend" line ends it. Each data byte is the
// file's byte plus 42 modulo 256; '=' escapes the next one, which is then
// 64 more. CR and LF are never data (an encoder escapes them), and an
// encoder never writes "=y" for data, so lines starting so are keywords.

// yBegin finds the start of a "=ybegin" line that names its file.
func yBegin(b []byte) int {
	return lineStarting(b, "=ybegin ", func(line []byte) bool { return bytes.Contains(line, []byte(" name=")) })
}

// decodeYEnc decodes one yEnc block starting at its =ybegin line; it
// returns the file name, the data and the rest of the input. A block of a
// multi-part file is decoded as far as it goes: its part of the file. A
// block without its =yend line ends at the next =ybegin, so that it does
// not swallow the file after it.
func decodeYEnc(b []byte) (name string, data, rest []byte) {
	line, rest := cutLine(b)
	_, name, _ = strings.Cut(string(bytes.TrimRight(line, " \t\r\n")), " name=")
	for len(rest) > 0 {
		line, next := cutLine(rest)
		l := bytes.TrimRight(line, "\r\n")
		switch {
		case bytes.HasPrefix(l, []byte("=ybegin ")):
			return name, data, rest
		case bytes.HasPrefix(l, []byte("=yend")):
			return name, data, next
		case bytes.HasPrefix(l, []byte("=ypart ")):
			rest = next
			continue
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if c == '=' {
				if i++; i == len(l) {
					break // an escape cut off at the end of the line
				}
				c = l[i] - 64
			}
			data = append(data, c-42)
		}
		rest = next
	}
	return name, data, rest
}
