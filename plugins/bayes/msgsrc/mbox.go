package msgsrc

import (
	"bytes"
)

// SplitMbox splits an mbox (RFC 4155) into messages. A file holding one
// message, with or without a leading "From " line, comes back whole.
//
// A new message starts at a "From " line that follows an empty line and
// looks like an envelope line ("From sender weekday ..."): mboxo files do
// not escape "From " in bodies, and a bare prefix test would cut messages
// that quote one. The "From " line stays with its message (the tokenizer
// skips it) and ">From " quoting is left alone.
func SplitMbox(data []byte) [][]byte {
	if !bytes.HasPrefix(data, []byte("From ")) {
		return [][]byte{data}
	}
	var out [][]byte
	start := 0
	for off := 0; ; {
		i := bytes.Index(data[off:], []byte("\n\nFrom "))
		if i < 0 {
			break
		}
		at := off + i + 2
		off = at
		if !envelopeLine(data[at:]) {
			continue
		}
		out = append(out, data[start:at-1])
		start = at
	}
	return append(out, data[start:])
}

// envelopeLine reports whether b starts with "From ADDR DAY ..." where DAY
// is an English weekday abbreviation, as every MTA writes it (asctime).
func envelopeLine(b []byte) bool {
	end := bytes.IndexByte(b, '\n')
	if end < 0 {
		end = len(b)
	}
	fields := bytes.Fields(b[:end])
	if len(fields) < 3 {
		return false
	}
	switch string(fields[2]) {
	case "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun":
		return true
	}
	return false
}
