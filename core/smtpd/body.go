package smtpd

import (
	"bytes"
	"io"
	"sync"
)

// bodyReader reads the message of a DATA straight from the guard, instead
// of through go-smtp's data reader, which takes it a byte at a time (60% of
// the gateway's CPU with 100 KB messages). The guard already finds the end
// of data with go-smtp's own state machine and checks the raw bytes; this
// reader removes the dot that starts a line (RFC 5321 4.5.2) and drops the
// end-of-data line. When the body is read to its end the guard hands
// go-smtp's reader a bare ".\r\n", so go-smtp sees the end of data there
// and carries on as usual.
//
// It applies no line-length limit, where go-smtp's reader would apply
// MaxLineLength and refuse the message with a permanent error: lines over
// RFC 5322's 998 are common in real mail (unwrapped HTML newsletters),
// Postfix accepts them, and the body streams to the spool, so a long line
// costs no memory. max_message_bytes bounds the whole.
type bodyReader struct {
	g         rawBody
	buf       []byte // raw bytes not yet decoded: buf[:n]
	n         int
	lineStart bool // buf[0] begins a line
	ended     bool // the guard has seen the end of data
}

// rawBody is the guard as the bodyReader sees it.
type rawBody interface {
	readBody(p []byte) (int, error) // raw bytes, up to and including the end-of-data line
	bodyDone() bool                 // the end-of-data line was read
}

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func newBodyReader(g rawBody) *bodyReader {
	return &bodyReader{g: g, buf: *bodyBufs.Get().(*[]byte), lineStart: true}
}

// release returns the buffer; the reader is not used after.
func (b *bodyReader) release() {
	if buf := b.buf; len(buf) == 32<<10 {
		bodyBufs.Put(&buf)
	}
	b.buf = nil
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if b.n > 0 {
			m, used := b.decode(p)
			copy(b.buf, b.buf[used:b.n])
			b.n -= used
			if m > 0 {
				return m, nil
			}
		}
		if b.ended {
			return 0, io.EOF
		}
		if b.n == len(b.buf) { // not in practice: at most 2 bytes are held back
			b.buf = append(b.buf, make([]byte, max(len(b.buf), 4<<10))...)
		}
		k, err := b.g.readBody(b.buf[b.n:])
		b.n += k
		b.ended = b.g.bodyDone()
		if err != nil {
			return 0, err
		}
	}
}

// decode moves decoded bytes from buf into p and returns how many it
// wrote and how many raw bytes it used. Before the end of data, a line
// start holding "." or ".\r" and nothing more is kept back: it may be the
// end-of-data line. After the end, the raw bytes end with that line, which
// is dropped.
func (b *bodyReader) decode(p []byte) (m, used int) {
	raw := b.buf[:b.n]
	if b.ended {
		raw = raw[:len(raw)-3] // ".\r\n"
	}
	for len(raw) > 0 && m < len(p) {
		if b.lineStart {
			if !b.ended && len(raw) <= 2 && raw[0] == '.' && (len(raw) == 1 || raw[1] == '\r') {
				break // maybe the end-of-data line: wait for more
			}
			b.lineStart = false
			if raw[0] == '.' {
				raw, used = raw[1:], used+1
				continue
			}
		}
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line = raw[:i+1]
		}
		k := copy(p[m:], line)
		m, used, raw = m+k, used+k, raw[k:]
		if k == len(line) && line[len(line)-1] == '\n' {
			b.lineStart = true
		}
	}
	if b.ended && len(raw) == 0 {
		used = b.n // the end-of-data line too
	}
	return m, used
}

// drain reads and drops the rest of the body, so that go-smtp finds the
// end of data where the guard did.
func (b *bodyReader) drain() {
	for !b.ended {
		k, err := b.g.readBody(b.buf)
		_ = k
		b.ended = b.g.bodyDone()
		if err != nil {
			return
		}
	}
}
