package smtpc

import (
	"bytes"
	"io"
)

// MaxLine is the longest text line SMTP allows, in octets without the
// CRLF (RFC 5321 4.5.3.1.6: 1000 with it).
const MaxLine = 998

// FoldLines returns r with every line longer than MaxLine octets broken
// by inserting CRLF SP, as Postfix's smtp_line_length_limit does: in the
// header that is a folded field (RFC 5322 2.2.3), in the body the best a
// relay can do. A CR or an LF ends a line, as the DATA writer sends
// either as a line end. Reads that hold no long line are passed through
// as they are, not copied. When r can seek, so can the result (a DKIM
// signer rewinds the message instead of spilling it): offsets are r's,
// and a seek lands at the start of a line.
func FoldLines(r io.Reader) io.Reader {
	f := &folder{r: r}
	if s, ok := r.(io.Seeker); ok {
		return &foldSeeker{folder: f, s: s}
	}
	return f
}

var fold = []byte("\r\n ")

type folder struct {
	r    io.Reader
	col  int    // octets in the current line so far
	ins  int    // octets of fold still to return
	rest []byte // read from r, after a fold, not returned yet
	err  error  // r's error, held back until rest is returned
}

func (f *folder) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if f.ins > 0 {
		n := copy(p, fold[len(fold)-f.ins:])
		f.ins -= n
		if f.ins == 0 {
			f.col = 1 // the SP
		}
		return n, nil
	}
	if len(f.rest) > 0 {
		src := f.rest
		k, _ := f.scan(src)
		n := copy(p, src[:k])
		_, f.col = f.scan(src[:n])
		f.rest = src[n:]
		if n == 0 { // a fold at once
			f.ins = len(fold)
			return f.Read(p)
		}
		if n == k && k < len(src) {
			f.ins = len(fold)
		}
		return n, nil
	}
	if f.err != nil {
		return 0, f.err
	}
	n, err := f.r.Read(p)
	k, col := f.scan(p[:n])
	f.col = col
	if k == n {
		return n, err // the fast path: nothing to fold
	}
	f.rest = append(f.rest[:0], p[k:n]...)
	f.err = err
	f.ins = len(fold)
	if k == 0 {
		return f.Read(p)
	}
	return k, nil
}

// scan returns how much of src goes before the next fold (len(src) if
// none) and the column after it.
func (f *folder) scan(src []byte) (int, int) {
	col := f.col
	for off := 0; off < len(src); {
		seg := src[off:]
		lf := bytes.IndexByte(seg, '\n')
		if lf >= 0 {
			seg = seg[:lf]
		}
		if col+len(seg) > MaxLine {
			// Long, unless CRs end it first: byte by byte.
			for i, b := range seg {
				if b == '\r' {
					col = 0
					continue
				}
				if col == MaxLine {
					return off + i, col
				}
				col++
			}
		} else if cr := bytes.LastIndexByte(seg, '\r'); cr >= 0 {
			col = len(seg) - cr - 1
		} else {
			col += len(seg)
		}
		if lf < 0 {
			break
		}
		col = 0
		off += lf + 1
	}
	return len(src), col
}

type foldSeeker struct {
	*folder
	s io.Seeker
}

// Seek seeks r and starts a new line there; offsets are r's. Bytes read
// from r but not returned yet are accounted for with io.SeekCurrent.
func (f *foldSeeker) Seek(offset int64, whence int) (int64, error) {
	if whence == io.SeekCurrent {
		offset -= int64(len(f.rest))
	}
	pos, err := f.s.Seek(offset, whence)
	if err != nil {
		return pos, err
	}
	f.col, f.ins, f.rest, f.err = 0, 0, nil, nil
	return pos, nil
}
