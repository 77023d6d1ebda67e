package mime

import (
	"bytes"
	"strconv"
	"strings"
)

// uuBegin finds "begin MODE NAME" lines of uuencoded files (POSIX uuencode),
// which older mailers put straight into text bodies instead of MIME parts.
func uuBegin(b []byte) int {
	return lineStarting(b, "begin ", func(line []byte) bool {
		f := strings.Fields(string(line))
		return len(f) >= 3 && len(f[1]) >= 3 && len(f[1]) <= 4 && strings.Trim(f[1], "01234567") == ""
	})
}

// lineStarting finds the first line of b that starts with prefix and that
// ok accepts; -1 when none.
func lineStarting(b []byte, prefix string, ok func(line []byte) bool) int {
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte(prefix))
		if i < 0 {
			return -1
		}
		i += off
		if i == 0 || b[i-1] == '\n' {
			if line, _ := cutLine(b[i:]); ok(line) {
				return i
			}
		}
		off = i + len(prefix)
	}
}

// decodeUU decodes one uuencoded file starting at its begin line; it
// returns the file name, the data and the rest of the input.
func decodeUU(b []byte) (name string, data, rest []byte) {
	line, rest := cutLine(b)
	f := strings.Fields(string(line))
	name = strings.Join(f[2:], " ")
	for len(rest) > 0 {
		line, rest = cutLine(rest)
		l := bytes.TrimRight(line, "\r\n")
		if bytes.Equal(l, []byte("end")) {
			break
		}
		if len(l) == 0 {
			continue
		}
		n := int((l[0] - ' ') & 63)
		if n == 0 {
			continue
		}
		var out []byte
		for i := 1; i < len(l) && len(out) < n; i += 4 {
			var q [4]byte
			for k := 0; k < 4; k++ {
				if i+k < len(l) {
					q[k] = (l[i+k] - ' ') & 63
				}
			}
			out = append(out, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2, q[2]<<6|q[3])
		}
		data = append(data, out[:min(n, len(out))]...)
	}
	return name, data, rest
}

// uuParts turns the files uuencoded or yEnc-encoded inside a text part
// into parts of their own ("1.u1", "1.y2": numbered in the order of the
// text), so that attachment stages see them.
func (w *walker) uuParts(text []byte, parent *Part) {
	// The next begin line of each kind, as an offset in text: each is
	// looked for again only once the walk passed it, so that files of one
	// kind do not make the text be read again for the other at each one.
	off, uu, y := 0, uuBegin(text), yBegin(text)
	for n := 1; ; n++ {
		if uu < 0 && y < 0 || w.stopped() {
			return
		}
		if w.parts >= w.lim.MaxParts {
			w.find(FindPartsLimit) // a file past the limit goes unread: say so
			return
		}
		w.parts++
		var name string
		var data, rest []byte
		kind := ".u"
		if y >= 0 && (uu < 0 || y < uu) {
			name, data, rest = decodeYEnc(text[y:])
			kind = ".y"
		} else {
			name, data, rest = decodeUU(text[uu:])
		}
		data, cut := w.bound(data)
		if w.lim.TextOnly {
			data = nil
		}
		p := &Part{Path: parent.Path + kind + strconv.Itoa(n), Depth: parent.Depth + 1,
			ContentType: "application/octet-stream", Filename: w.literal(name), Disposition: "attachment",
			Body: data, Truncated: cut}
		p.addNULPrefixes()
		w.msg.Parts = append(w.msg.Parts, p)
		off = len(text) - len(rest)
		uu, y = nextFrom(text, off, uu, uuBegin), nextFrom(text, off, y, yBegin)
	}
}

// nextFrom returns at, an offset of a begin line in text, when it is at
// off or past it, else the next one find finds from off; -1 when none.
func nextFrom(text []byte, off, at int, find func([]byte) int) int {
	if at < 0 || at >= off {
		return at
	}
	if i := find(text[off:]); i >= 0 {
		return off + i
	}
	return -1
}

// uuEncoding reports a Content-Transfer-Encoding (lower case) naming
// uuencode, which mailers spell several ways; Thunderbird takes these four.
func uuEncoding(cte string) bool {
	return cte == "x-uuencode" || cte == "uuencode" || cte == "x-uue" || cte == "uue"
}

// decodeUUBody decodes a body sent with such an encoding: the file after
// its begin line, or the lines as they are when a mailer left it out.
func decodeUUBody(body []byte) []byte {
	if i := uuBegin(body); i >= 0 {
		body = body[i:]
	} else {
		body = append([]byte("begin 644 \n"), body...)
	}
	_, data, _ := decodeUU(body)
	return data
}

// uuName is the file name on a uuencoded body's begin line, or "".
func uuName(body []byte) string {
	if i := uuBegin(body); i >= 0 {
		line, _ := cutLine(body[i:])
		if f := strings.Fields(string(line)); len(f) > 2 {
			return strings.Join(f[2:], " ")
		}
	}
	return ""
}
