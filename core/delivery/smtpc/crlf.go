package smtpc

import "io"

// crlfWriter turns a bare CR or a bare LF into CRLF (RFC 5321 2.3.8: they
// must not be sent; go-smtp's server and others pass them through, and a
// next hop may read them as line ends, which smuggling attacks exploit).
type crlfWriter struct {
	w      io.Writer
	cr     bool // the last byte written was a CR not yet known to be bare
	buf    []byte
	failed error
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	if c.failed != nil {
		return 0, c.failed
	}
	out := c.buf[:0]
	for _, b := range p {
		if c.cr {
			c.cr = false
			out = append(out, '\r', '\n')
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\r':
			c.cr = true
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, b)
		}
	}
	c.buf = out
	if _, err := c.w.Write(out); err != nil {
		c.failed = err
		return 0, err
	}
	return len(p), nil
}

// Close ends a trailing bare CR. It does not close the underlying writer.
func (c *crlfWriter) Close() error {
	if c.cr {
		c.cr = false
		_, err := c.w.Write([]byte("\r\n"))
		return err
	}
	return nil
}
