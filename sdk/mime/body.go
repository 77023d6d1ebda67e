package mime

import (
	"bytes"
	"strconv"
	"strings"
)

// entity walks one MIME entity (RFC 2045 2.4): a container recurses, a leaf
// becomes a Part.
func (w *walker) entity(hdr []field, body []byte, path string, depth int) {
	if w.stopped() {
		return
	}
	w.parts++
	if w.parts > w.lim.MaxParts {
		w.find(FindPartsLimit)
		return
	}
	ct := getField(hdr, "Content-Type")
	media, params, plainNames := w.mediaParams(ct)
	if !strings.Contains(media, "/") {
		media = "text/plain" // RFC 2045 5.2: absent or invalid means text/plain
	}
	switch {
	case strings.HasPrefix(media, "multipart/"):
		if w.multiparts(w.boundaries(ct, params), body, path, depth) {
			return
		}
		media = "text/plain" // no usable boundary: scan the body as text
	case media == "message/rfc822" || media == "message/global":
		if depth >= w.lim.MaxDepth {
			w.find(FindDepthLimit)
			return
		}
		data, _ := w.decodeTransfer(hdr, body)
		h, b := w.splitHeader(data)
		w.entity(h, b, path, depth+1)
		return
	}
	w.leaf(hdr, body, media, params, plainNames, path, depth)
}

// multipart walks the children of a multipart body (RFC 2046 5.1). It
// returns false when the body has no usable boundary at all.
func (w *walker) multipart(body []byte, boundary, path string, depth int) bool {
	if depth >= w.lim.MaxDepth {
		w.find(FindDepthLimit)
		return true
	}
	// The children past the ones the parts limit lets the walk visit are
	// not kept: one more is enough to report the limit.
	children, closed := splitMultipart(body, boundary, w.lim.MaxParts-w.parts+1)
	if !closed {
		w.find(FindBoundaryBroken)
	}
	if children == nil {
		return false
	}
	for i, c := range children {
		if w.parts >= w.lim.MaxParts {
			w.find(FindPartsLimit)
			return true
		}
		h, b := w.splitHeader(c)
		w.entity(h, b, childPath(path, i+1), depth+1)
	}
	return true
}

func childPath(path string, i int) string {
	if path == "" {
		return strconv.Itoa(i)
	}
	return path + "." + strconv.Itoa(i)
}

// splitMultipart cuts body at its delimiter lines. A delimiter is
// "--boundary" at the start of a line followed only by white space; the line
// break before it belongs to it (RFC 2046 5.1.1). closed reports whether the
// close delimiter was seen.
//
// At most keep children are returned; past them the body is still read for
// the close delimiter but nothing is kept. Keeping them all made a body of
// nothing but delimiter lines cost twenty times its size (25 MB of "--q"
// lines took 733 MB) while the walk visits only Limits.MaxParts of them.
func splitMultipart(body []byte, boundary string, keep int) (children [][]byte, closed bool) {
	if boundary == "" {
		return nil, false
	}
	delim := []byte("--" + boundary)
	start := -1 // where the current child's content begins
	for pos := 0; pos < len(body); {
		i := bytes.Index(body[pos:], delim)
		if i < 0 {
			break
		}
		i += pos
		line, rest := cutLine(body[i+len(delim):])
		pos = i + len(delim) + len(line)
		if i > 0 && body[i-1] != '\n' {
			continue
		}
		tail := bytes.TrimRight(line, " \t\r\n")
		isClose := bytes.Equal(tail, []byte("--"))
		if len(tail) != 0 && !isClose {
			continue
		}
		if start >= 0 && len(children) < keep {
			children = append(children, trimLineBreak(body[start:i]))
		}
		if isClose {
			return children, true
		}
		start = len(body) - len(rest)
	}
	if start >= 0 && len(children) < keep {
		children = append(children, body[start:])
	}
	return children, false
}

func trimLineBreak(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// leaf decodes a single-part entity into a Part. ctNames are the names a
// plain reader finds in Content-Type where the walker's reading differs
// (see mediaParams).
func (w *walker) leaf(hdr []field, body []byte, media string, params map[string]string, ctNames []string, path string, depth int) {
	if path == "" {
		path = "1"
	}
	p := &Part{Path: path, Depth: depth, ContentType: media, Charset: strings.ToLower(params["charset"])}
	disp, dparams, dNames := w.mediaParams(getField(hdr, "Content-Disposition"))
	p.Disposition = disp
	p.Filename = dparams["filename"]
	switch name := params["name"]; {
	case p.Filename == "":
		p.Filename = name
	case name != "" && name != p.Filename:
		p.AltFilename = name
	}
	for _, n := range append(dNames, ctNames...) {
		p.addPlainName(n)
	}
	for _, n := range w.fallbackNames(hdr) {
		if p.Filename == "" {
			p.Filename = n // no parameter names the part: Thunderbird names it so
		} else {
			p.addPlainName(n)
		}
	}
	p.IsText = strings.HasPrefix(media, "text/")
	p.HTML = media == "text/html"
	// Bytes nobody will read are measured, not decoded: a 20 MB base64
	// attachment decoded cost textfilter 35 MB for nothing.
	measure := w.lim.TextOnly && !p.IsText
	var data []byte
	var size int64
	if measure {
		size = w.decodedLen(hdr, body)
	} else {
		data, _ = w.decodeTransfer(hdr, body)
	}
	if p.Filename == "" && uuEncoding(transferEncoding(hdr)) {
		p.Filename = w.literal(uuName(body))
	}
	p.addNULPrefixes()
	if measure {
		_, p.Truncated = w.boundLen(size)
		w.msg.Parts = append(w.msg.Parts, p)
		return
	}
	data, p.Truncated = w.bound(data)
	if p.IsText {
		declared := p.Charset
		if p.HTML && declared == "" {
			declared = w.metaCharset(data)
		}
		text, used := w.decodeCharset(data, declared)
		if used != p.Charset && !(p.Charset == "" && used == csASCII) {
			p.DetectedCharset = used
		}
		if p.HTML {
			text = htmlToText(text)
		}
		p.Text = text
	}
	if !w.lim.TextOnly && (!p.IsText || p.Disposition == "attachment" || p.Filename != "") {
		p.Body = data
	}
	w.msg.Parts = append(w.msg.Parts, p)
	if p.IsText && !p.HTML {
		w.uuParts(data, p)
	}
}

// fallbackFields are the fields Thunderbird takes a part's name from, in
// this order, when neither Content-Disposition's filename= nor
// Content-Type's name= gives one (MimeHeaders_get_name): a file named only
// there is saved under that name, so the names are the part's too.
var fallbackFields = [...]string{"Content-Name", "X-Sun-Data-Name"}

// fallbackNames are the values of the fallbackFields, RFC 2047 decoded as
// Thunderbird decodes them.
func (w *walker) fallbackNames(hdr []field) []string {
	var names []string
	for _, f := range fallbackFields {
		if v := getField(hdr, f); v != "" {
			names = append(names, w.decodeHeader(v))
		}
	}
	return names
}

func transferEncoding(hdr []field) string {
	return strings.ToLower(strings.TrimSpace(getField(hdr, "Content-Transfer-Encoding")))
}

// bound cuts decoded data to the per-part and total limits.
func (w *walker) bound(data []byte) ([]byte, bool) {
	n, cut := w.boundLen(int64(len(data)))
	return data[:n], cut
}

// boundLen counts n decoded bytes against the limits and returns how many
// of them are kept.
func (w *walker) boundLen(n int64) (int64, bool) {
	cut := false
	if n > w.lim.MaxPartBytes {
		n, cut = w.lim.MaxPartBytes, true
		w.find(FindPartTruncated)
	}
	if left := w.lim.MaxTotalBytes - w.decoded; n > left {
		n, cut = max(left, 0), true
		w.find(FindTotalLimit)
	}
	w.decoded += n
	return n, cut
}

// decodeTransfer undoes the Content-Transfer-Encoding (RFC 2045 6), and
// x-uuencode, which RFC 2045 does not name but old mailers send and
// Thunderbird decodes: a file hidden in it must not pass as undecodable.
func (w *walker) decodeTransfer(hdr []field, body []byte) ([]byte, bool) {
	switch cte := transferEncoding(hdr); {
	case cte == "base64":
		out, bad := decodeBase64(body)
		if bad {
			w.find(FindBase64Invalid)
		}
		return out, true
	case cte == "quoted-printable":
		out, bad := decodeQP(body)
		if bad {
			w.find(FindQPInvalid)
		}
		return out, true
	case uuEncoding(cte):
		return decodeUUBody(body), true
	case cte == "" || cte == "7bit" || cte == "8bit" || cte == "binary":
		return body, false
	default:
		w.find(FindEncodingUnknown)
		return body, false
	}
}

// decodedLen is the length decodeTransfer would decode body to, with its
// findings, without keeping the bytes (Limits.TextOnly).
func (w *walker) decodedLen(hdr []field, body []byte) int64 {
	switch cte := transferEncoding(hdr); {
	case cte == "base64":
		n, bad := base64Len(body)
		if bad {
			w.find(FindBase64Invalid)
		}
		return int64(n)
	case cte == "quoted-printable":
		n, bad := qpLen(body)
		if bad {
			w.find(FindQPInvalid)
		}
		return int64(n)
	case uuEncoding(cte):
		return int64(len(decodeUUBody(body))) // rare: old mailers' files
	case cte == "" || cte == "7bit" || cte == "8bit" || cte == "binary":
		return int64(len(body))
	default:
		w.find(FindEncodingUnknown)
		return int64(len(body))
	}
}
