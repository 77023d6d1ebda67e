package smtpd

import (
	"bytes"
	"errors"
	"io"
)

// Errors of the line checker.
var (
	errBareBytes = errors.New("smtpd: bare CR, bare LF or NUL in message")
	errOversize  = errors.New("smtpd: message over the size limit")
	// errForcedShutdown ends a DATA transfer when the shutdown grace is
	// over (guardConn.forceClose).
	errForcedShutdown = errors.New("smtpd: shutdown grace over")
)

// lineChecker passes message bytes to w while enforcing RFC 5321 2.3.8 (CR
// and LF only together as CRLF) and 4.5.2 (no NUL): go-smtp passes all three
// through, and a next hop that reads a bare LF as a line end can be made to
// see an end of data that we did not (SMTP smuggling). It also enforces
// the size limit (limit <= 0: none). The first violation stops the writing
// and is returned from every later Write.
type lineChecker struct {
	w      io.Writer
	limit  int64
	n      int64
	prevCR bool
	err    error
	hops   hopCounter // the header's Received fields
}

func (c *lineChecker) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if !c.hops.done {
		c.hops.Write(p)
	}
	if c.limit > 0 && c.n+int64(len(p)) > c.limit {
		c.err = errOversize
		return 0, c.err
	}
	if err := c.scan(p); err != nil {
		c.err = err
		return 0, err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// scan checks p with vectorised searches rather than byte by byte (this
// runs over every byte of every message): no NUL; every LF has a CR just
// before it; and as many of p's CRs have their LF right after them as
// there are LFs preceded by a CR inside p, so no CR is bare. A CR ending p
// waits for the next write.
func (c *lineChecker) scan(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if bytes.IndexByte(p, 0) >= 0 || (c.prevCR && p[0] != '\n') || (!c.prevCR && p[0] == '\n') {
		return errBareBytes
	}
	lfs := 0 // LFs after a CR inside p
	for i := 1; ; {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			break
		}
		i += j
		if p[i-1] != '\r' {
			return errBareBytes
		}
		lfs++
		i++
		if i >= len(p) {
			break
		}
	}
	last := len(p) - 1
	if bytes.Count(p[:last], []byte{'\r'}) != lfs {
		return errBareBytes
	}
	c.prevCR = p[last] == '\r'
	return nil
}

// Close reports a CR left at the very end without its LF.
func (c *lineChecker) Close() error {
	if c.err == nil && c.prevCR {
		c.err = errBareBytes
	}
	return c.err
}

// checkLines runs the whole of data through a lineChecker (tests, fuzzing).
func checkLines(data []byte) error {
	c := &lineChecker{w: io.Discard}
	if _, err := c.Write(data); err != nil {
		return err
	}
	return c.Close()
}
