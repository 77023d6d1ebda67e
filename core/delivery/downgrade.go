package delivery

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
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
		} else if !isASCII(string(line)) {
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

// downgrade8bit returns msg with its 8-bit body parts converted to
// quoted-printable, and whether anything changed.
func downgrade8bit(msg []byte) ([]byte, bool) {
	var out bytes.Buffer
	out.Grow(len(msg) + len(msg)/8)
	changed := convertEntity(&out, msg, "text/plain", 0)
	if !changed {
		return msg, false
	}
	return out.Bytes(), true
}

// convertEntity writes entity (a header, an empty line, a body) to out,
// converted, and reports whether it changed anything. defType is the
// Content-Type assumed without one (message/rfc822 inside a
// multipart/digest, else text/plain).
func convertEntity(out *bytes.Buffer, entity []byte, defType string, depth int) bool {
	hlen := headerLen(entity)
	body := entity[hlen:]
	if depth > maxMIMEDepth || isASCII(string(body)) {
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
func convertLeaf(out *bytes.Buffer, h *textproto.Header, body []byte, top bool) bool {
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
	w := quotedprintable.NewWriter(out)
	// Writes to a bytes.Buffer do not fail; CRLF in, CRLF out.
	_, _ = w.Write(body)
	_ = w.Close()
	return true
}

// convertMultipart converts each part of a multipart body; the preamble,
// the delimiter lines and the epilogue are copied, their 8-bit bytes (no
// reader shows them; RFC 2046 5.1.1 says to ignore them) replaced by '?'.
func convertMultipart(out *bytes.Buffer, body []byte, boundary, child string, depth int) bool {
	delim := []byte("--" + boundary)
	changed := false
	var part []byte // the current part's bytes, nil in the preamble and epilogue
	inPart, closed := false, false
	flushPart := func() {
		if !inPart {
			return
		}
		// The CRLF before a delimiter belongs to the delimiter.
		p := part
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
	for len(body) > 0 {
		i := bytes.IndexByte(body, '\n')
		line := body
		if i >= 0 {
			line = body[:i+1]
		}
		body = body[len(line):]
		if !closed && bytes.HasPrefix(line, delim) && isDelimiter(line[len(delim):]) {
			flushPart()
			part = part[:0]
			out.Write(line)
			if bytes.HasPrefix(line[len(delim):], []byte("--")) {
				inPart, closed = false, true
			} else {
				inPart = true
			}
			continue
		}
		if inPart {
			part = append(part, line...)
			continue
		}
		if !isASCII(string(line)) {
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
