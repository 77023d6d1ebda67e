package smtpc

import (
	"bufio"
	"bytes"
)

// dataWriter writes a message body in the DATA encoding: every line end a
// CRLF (a bare CR or bare LF becomes one: RFC 5321 2.3.8 forbids sending
// them, and a next hop that reads them as line ends is open to smuggling),
// a leading dot doubled (4.5.2), and the final CRLF.CRLF on Close. It
// scans with bytes.IndexByte and copies whole runs, where textproto's
// DotWriter goes byte by byte.
type dataWriter struct {
	w   *bufio.Writer
	bol bool // at the beginning of a line
	cr  bool // the chunk ended with a CR: is it CRLF or bare?
}

func newDataWriter(w *bufio.Writer) *dataWriter { return &dataWriter{w: w, bol: true} }

func (d *dataWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if d.cr {
			d.cr = false
			d.eol()
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		if d.bol && p[0] == '.' {
			d.w.WriteByte('.')
		}
		d.bol = false
		lf := bytes.IndexByte(p, '\n')
		seg := p
		if lf >= 0 {
			seg = p[:lf]
		}
		if cr := bytes.IndexByte(seg, '\r'); cr >= 0 && !(lf >= 0 && cr == len(seg)-1) {
			// A CR that is not the CR of a CRLF: bare, or at the end of p.
			d.w.Write(seg[:cr])
			if cr == len(p)-1 {
				d.cr = true
			} else {
				d.eol()
			}
			p = p[cr+1:]
			continue
		}
		if lf < 0 {
			d.w.Write(p)
			break
		}
		if len(seg) > 0 && seg[len(seg)-1] == '\r' {
			seg = seg[:len(seg)-1]
		}
		d.w.Write(seg)
		d.eol()
		p = p[lf+1:]
	}
	// bufio.Writer keeps its first error; it comes back from Flush in Close.
	return n, nil
}

func (d *dataWriter) eol() {
	d.w.WriteString("\r\n")
	d.bol = true
}

// Close ends the last line and writes the terminating dot, then flushes.
func (d *dataWriter) Close() error {
	if d.cr {
		d.cr = false
		d.eol()
	}
	if !d.bol {
		d.eol()
	}
	d.w.WriteString(".\r\n")
	return d.w.Flush()
}
