package msgsrc

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// SplitMbox splits an mbox (RFC 4155) into messages. A file holding one
// message, with or without a leading "From " line, comes back whole.
//
// A new message starts at a "From " line that follows an empty line and
// looks like an envelope line ("From sender weekday ..."): mboxo files do
// not escape "From " in bodies, and a bare prefix test would cut messages
// that quote one. The empty line may be LF or CRLF (an mbox copied from a
// Windows client, or written with the wire's line ends). The "From " line
// stays with its message (the tokenizer skips it) and ">From " quoting is
// left alone.
func SplitMbox(data []byte) [][]byte {
	var out [][]byte
	_ = splitMbox(bytes.NewReader(data), 0, func(msg, _ []byte) error {
		out = append(out, msg)
		return nil
	})
	return out
}

// splitMbox reads r as SplitMbox splits it, calling fn with each message
// (at most limit bytes of it; the rest is dropped; limit 0: no bound) and
// the empty line dropped after it (nil for the last), without reading the
// whole of r into memory: an mbox may be far larger than one message.
// Input that does not start with "From " is one message.
func splitMbox(r io.Reader, limit int, fn func(msg, sep []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var cur, blank []byte // the message so far; an empty line held back
	lineStart := true
	mbox := false
	for first := true; ; first = false {
		chunk, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
			return err
		}
		if len(chunk) > 0 {
			atStart := lineStart
			lineStart = chunk[len(chunk)-1] == '\n'
			if first {
				mbox = bytes.HasPrefix(chunk, []byte("From "))
			}
			switch {
			case mbox && atStart && blank != nil && envelopeLine(chunk):
				if ferr := fn(cur, blank); ferr != nil {
					return ferr
				}
				cur, blank = nil, nil
			case blank != nil:
				cur = appendLimit(cur, blank, limit)
				blank = nil
			}
			if mbox && atStart && lineStart && isEmptyLine(chunk) {
				blank = append([]byte(nil), chunk...)
			} else {
				cur = appendLimit(cur, chunk, limit)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if blank != nil {
		cur = appendLimit(cur, blank, limit)
	}
	if cur == nil {
		cur = []byte{}
	}
	return fn(cur, nil)
}

func isEmptyLine(line []byte) bool {
	return string(line) == "\n" || string(line) == "\r\n"
}

// appendLimit appends b to cur up to limit bytes in all (0: no limit).
func appendLimit(cur, b []byte, limit int) []byte {
	if limit > 0 && len(cur)+len(b) > limit {
		b = b[:max(0, limit-len(cur))]
	}
	return append(cur, b...)
}

// envelopeLine reports whether b starts with "From ADDR DAY ..." where DAY
// is an English weekday abbreviation, as every MTA writes it (asctime).
func envelopeLine(b []byte) bool {
	if !bytes.HasPrefix(b, []byte("From ")) {
		return false
	}
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
