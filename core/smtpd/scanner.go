package smtpd

import (
	"errors"
	"io"
)

// Errors of the line checker.
var (
	errBareBytes = errors.New("smtpd: bare CR, bare LF or NUL in message")
	errOversize  = errors.New("smtpd: message over the size limit")
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
}

func (c *lineChecker) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.limit > 0 && c.n+int64(len(p)) > c.limit {
		c.err = errOversize
		return 0, c.err
	}
	for _, b := range p {
		switch {
		case b == 0:
			c.err = errBareBytes
		case c.prevCR && b != '\n':
			c.err = errBareBytes
		case !c.prevCR && b == '\n':
			c.err = errBareBytes
		}
		if c.err != nil {
			return 0, c.err
		}
		c.prevCR = b == '\r'
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
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
