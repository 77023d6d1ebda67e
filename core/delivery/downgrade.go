package delivery

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"os"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"
)

// RFC 6152 3: 8-bit mail must not go as it is to a next hop that does not
// offer 8BITMIME. As Postfix does (disable_mime_output_conversion = no),
// the body parts that hold 8-bit text are converted to quoted-printable
// (RFC 2045 6.7) before the message is signed and sent; multiparts and
// message/rfc822 parts are converted part by part, and everything else is
// left byte for byte as it was. A header is never changed but for the
// Content-Transfer-Encoding of a converted part: 8-bit header bytes stay
// (Postfix leaves them too; RFC 2047 re-encoding of a raw header would be
// a guess at its charset).
//
// The conversion breaks a DKIM signature made before it over the body
// (unavoidable; ours is made after it).

// maxMIMEDepth bounds the recursion through nested parts; deeper parts are
// left as they are.
const maxMIMEDepth = 20

// needs7bit reports whether the message's body (after the header) has a
// byte above 127, reading it from open.
func needs7bit(open opener) (bool, error) {
	body, err := open()
	if err != nil {
		return false, err
	}
	defer body.Close()
	br := bufio.NewReaderSize(body, 64<<10)
	inHeader, start := true, true
	for {
		line, err := br.ReadSlice('\n')
		if inHeader {
			if start && (string(line) == "\r\n" || string(line) == "\n") {
				inHeader = false
			}
			start = err == nil
		} else if !asciiBytes(line) {
			return true, nil
		}
		switch {
		case err == nil, err == bufio.ErrBufferFull:
		case err == io.EOF:
			return false, nil
		default:
			return false, err
		}
	}
}

// downgrading is a message being converted as it is read: the conversion
// runs in a goroutine of its own and writes through a pipe, so that only
// the message and a small buffer are held, never a converted copy (which
// quoted-printable makes up to three times the size of the 8-bit text).
type downgrading struct {
	msg       []byte
	converted func() // once, however often the message is read
	pr        *io.PipeReader
	done      chan struct{} // closed when the conversion has ended
	pos       int64         // the bytes read since the start
	closed    bool
}

// startDowngrade converts msg (see downgradeTo) for the reader it returns;
// converted is called when the conversion ends, if it changed anything,
// before the reader sees the end.
func startDowngrade(msg []byte, converted func()) *downgrading {
	d := &downgrading{msg: msg, converted: sync.OnceFunc(converted)}
	d.start()
	return d
}

func (d *downgrading) start() {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	d.pr, d.done, d.pos = pr, done, 0
	go func() {
		defer close(done)
		bw := bufio.NewWriterSize(pw, 32<<10)
		changed, err := downgradeTo(bw, d.msg)
		if err == nil {
			err = bw.Flush()
		}
		if err == nil && changed {
			d.converted()
		}
		pw.CloseWithError(err) // nil: the reader gets io.EOF
	}()
}

// stop ends the conversion where it is, when the delivery stops half way
// (its next write fails), and waits for it.
func (d *downgrading) stop() {
	d.pr.Close()
	<-d.done
}

func (d *downgrading) Read(p []byte) (int, error) {
	n, err := d.pr.Read(p)
	d.pos += int64(n)
	return n, err
}

// Close stops the conversion: nothing outlives the delivery.
func (d *downgrading) Close() error {
	d.closed = true
	d.stop()
	return nil
}

// Seek rewinds, by running the conversion again: the DKIM signer reads a
// seekable message once for the body hash, then again to send it, and
// keeps one it cannot rewind in memory and a temporary file (see
// dkimsign). The second run gives the same bytes, with no copy of them
// anywhere. Only the start and the current offset can be sought.
func (d *downgrading) Seek(offset int64, whence int) (int64, error) {
	to := offset
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		to += d.pos
	default:
		return d.pos, errRewindOnly
	}
	switch {
	case d.closed:
		return d.pos, os.ErrClosed
	case to == d.pos:
	case to == 0:
		d.stop()
		d.start()
	default:
		return d.pos, errRewindOnly
	}
	return d.pos, nil
}

var errRewindOnly = errors.New("delivery: a converted message can only be rewound")

// downgradeTo writes msg to w with its 8-bit body parts converted to
// quoted-printable, and reports whether anything changed (if not, what
// was written is msg as it is). It stops at w's first error.
func downgradeTo(w io.Writer, msg []byte) (bool, error) {
	out := &sink{w: w}
	changed := convertEntity(out, msg, "text/plain", 0)
	return changed, out.err
}

// sink is the converted message's writer. Its first error sticks: every
// write after it does nothing, and the loops over lines stop.
type sink struct {
	w   io.Writer
	err error
}

func (s *sink) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	var n int
	n, s.err = s.w.Write(p)
	return n, s.err
}

func (s *sink) WriteString(str string) {
	if s.err == nil {
		_, s.err = io.WriteString(s.w, str)
	}
}

// convertEntity writes entity (a header, an empty line, a body) to out,
// converted, and reports whether it changed anything. defType is the
// Content-Type assumed without one (message/rfc822 inside a
// multipart/digest, else text/plain).
func convertEntity(out *sink, entity []byte, defType string, depth int) bool {
	hlen := headerLen(entity)
	body := entity[hlen:]
	if depth > maxMIMEDepth || asciiBytes(body) {
		out.Write(entity)
		return false
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(entity[:hlen])))
	if err != nil {
		out.Write(entity)
		return false
	}
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if h.Get("Content-Type") == "" {
		mediaType, params, err = defType, nil, nil
	}
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	identity := cte == "" || cte == "7bit" || cte == "8bit" || cte == "binary"
	switch {
	case !identity:
		// Already encoded, yet 8-bit: broken; decoding it is a guess.
	case err != nil:
		// An unreadable Content-Type is text/plain (RFC 2045 5.2),
		// which is what a leaf is converted as.
		return convertLeaf(out, &h, body, depth == 0)
	case strings.HasPrefix(mediaType, "multipart/") && params["boundary"] != "":
		out.Write(entity[:hlen])
		child := "text/plain"
		if mediaType == "multipart/digest" {
			child = "message/rfc822"
		}
		return convertMultipart(out, body, params["boundary"], child, depth)
	case mediaType == "message/rfc822":
		out.Write(entity[:hlen])
		return convertEntity(out, body, "text/plain", depth+1)
	case strings.HasPrefix(mediaType, "multipart/"), strings.HasPrefix(mediaType, "message/") && mediaType != "message/global":
		// No boundary, or message/partial and the like, which must be
		// 7bit (RFC 2046 5.2): nothing sound to do.
	default:
		return convertLeaf(out, &h, body, depth == 0)
	}
	out.Write(entity)
	return false
}

// convertLeaf writes a leaf part with its body in quoted-printable. top:
// the part is the message itself, which, without a MIME-Version field, is
// no MIME message (RFC 2045 4): a reader would not decode the new
// Content-Transfer-Encoding. It gets MIME-Version and, lacking one, a
// Content-Type that names UTF-8 when the text is UTF-8 (else RFC 1428's
// unknown-8bit), as the 8-bit text had no declared charset.
func convertLeaf(out *sink, h *textproto.Header, body []byte, top bool) bool {
	// The field is replaced where it stands (go-message's Add would put a
	// new one first, above the trace fields at the top level, which RFC
	// 5322 3.6 keeps first), or added last.
	const cte = "Content-Transfer-Encoding: quoted-printable\r\n"
	done := false
	for f := h.Fields(); f.Next(); {
		if strings.EqualFold(f.Key(), "Content-Transfer-Encoding") {
			if !done {
				out.WriteString(cte)
				done = true
			}
			continue
		}
		raw, err := f.Raw()
		if err != nil {
			return false // not reached: every field was parsed from the message
		}
		out.Write(raw)
	}
	if !done {
		out.WriteString(cte)
	}
	if top && !h.Has("MIME-Version") {
		out.WriteString("MIME-Version: 1.0\r\n")
		if !h.Has("Content-Type") {
			charset := "utf-8"
			if !utf8.Valid(body) {
				charset = "unknown-8bit"
			}
			out.WriteString("Content-Type: text/plain; charset=" + charset + "\r\n")
		}
	}
	out.WriteString("\r\n")
	// CRLF in, CRLF out. A failed write sticks in out.
	w := quotedprintable.NewWriter(out)
	_, _ = w.Write(body)
	_ = w.Close()
	return true
}

// convertMultipart converts each part of a multipart body; the preamble,
// the delimiter lines and the epilogue are copied, their 8-bit bytes (no
// reader shows them; RFC 2046 5.1.1 says to ignore them) replaced by '?'.
func convertMultipart(out *sink, body []byte, boundary, child string, depth int) bool {
	delim := []byte("--" + boundary)
	changed := false
	// The current part is body[start:end]: its lines lie side by side, so
	// it is sliced, not copied.
	start, end := 0, 0
	inPart, closed := false, false
	flushPart := func() {
		if !inPart {
			return
		}
		// The CRLF before a delimiter belongs to the delimiter.
		p := body[start:end]
		crlf := bytes.HasSuffix(p, []byte("\r\n"))
		if crlf {
			p = p[:len(p)-2]
		}
		if convertEntity(out, p, child, depth+1) {
			changed = true
		}
		if crlf {
			out.WriteString("\r\n")
		}
	}
	for off := 0; off < len(body) && out.err == nil; {
		line := body[off:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		off += len(line)
		if !closed && bytes.HasPrefix(line, delim) && isDelimiter(line[len(delim):]) {
			flushPart()
			start, end = off, off
			out.Write(line)
			if bytes.HasPrefix(line[len(delim):], []byte("--")) {
				inPart, closed = false, true
			} else {
				inPart = true
			}
			continue
		}
		if inPart {
			end = off
			continue
		}
		if !asciiBytes(line) {
			line = bytes.Map(func(r rune) rune {
				if r > 127 {
					return '?'
				}
				return r
			}, bytes.ToValidUTF8(line, []byte("?")))
			changed = true
		}
		out.Write(line)
	}
	if inPart { // no close delimiter: the last part runs to the end
		flushPart()
	}
	return changed
}

// asciiBytes is isASCII for a []byte, which string() would copy first:
// a whole body here.
func asciiBytes(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// isDelimiter reports whether rest, what follows "--boundary" on a line,
// makes it a delimiter line: "--" for the close delimiter, then only
// linear white space up to the line end (RFC 2046 5.1.1).
func isDelimiter(rest []byte) bool {
	rest = bytes.TrimPrefix(rest, []byte("--"))
	return len(bytes.TrimRight(rest, " \t\r\n")) == 0
}

// headerLen returns the length of entity's header, its ending empty line
// included: the body starts there.
func headerLen(entity []byte) int {
	if bytes.HasPrefix(entity, []byte("\r\n")) {
		return 2
	}
	if bytes.HasPrefix(entity, []byte("\n")) {
		return 1
	}
	if i := bytes.Index(entity, []byte("\n\r\n")); i >= 0 {
		if j := bytes.Index(entity, []byte("\n\n")); j >= 0 && j < i {
			return j + 2
		}
		return i + 3
	}
	if j := bytes.Index(entity, []byte("\n\n")); j >= 0 {
		return j + 2
	}
	return len(entity)
}
