package smtpd

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"mime"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/queue"
	"github.com/portcullis-mta/portcullis/sdk"
	sdkmime "github.com/portcullis-mta/portcullis/sdk/mime"
)

// maxHeaderCapture bounds the top-level header kept in memory for stages;
// the message itself is never held in memory.
const maxHeaderCapture = 256 << 10

// headerCapture keeps the top-level header as it streams past.
type headerCapture struct {
	buf  bytes.Buffer
	done bool
}

func (h *headerCapture) Write(p []byte) (int, error) {
	if h.done {
		return len(p), nil
	}
	h.buf.Write(p)
	if i := bytes.Index(h.buf.Bytes(), []byte("\r\n\r\n")); i >= 0 {
		h.buf.Truncate(i + 4)
		h.done = true
	} else if bytes.HasPrefix(h.buf.Bytes(), []byte("\r\n")) {
		h.buf.Truncate(2) // no header at all
		h.done = true
	} else if h.buf.Len() > maxHeaderCapture {
		h.buf.Truncate(maxHeaderCapture)
		h.done = true
	}
	return len(p), nil
}

// fields parses what was captured (as much as parses).
func (h *headerCapture) fields() []sdk.HeaderField {
	return parseHeader(h.buf.Bytes())
}

func parseHeader(b []byte) []sdk.HeaderField {
	hdr, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(b)))
	var out []sdk.HeaderField
	for f := hdr.Fields(); f.Next(); {
		out = append(out, sdk.HeaderField{Name: utf8Text(f.Key()), Value: utf8Text(unfold(f.Value()))})
	}
	return out
}

// HeaderFields is the top-level header at the start of data as a session
// gives it to stages and rules: what parses of the first 256 KiB up to the
// blank line, values unfolded and in UTF-8. A header that does not parse
// to the end is not an error: a session takes such a message too.
// `portcullis scan` builds its requests with it.
func HeaderFields(data []byte) []sdk.HeaderField {
	var h headerCapture
	h.Write(data)
	return h.fields()
}

// utf8Text is s in UTF-8. Raw 8-bit header bytes, as old Japanese mailers
// write Shift_JIS or EUC-JP (RFC 6532 allows only UTF-8 there), are decoded
// by the MIME walker's charset detection: stages and rules get the text,
// and the plugin protocol, whose strings must be UTF-8, can carry it (a
// single such byte used to fail every stage's call).
func utf8Text(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	t, _ := sdkmime.ToUTF8([]byte(s), "")
	return t
}

// unfold joins folded lines (RFC 5322 2.2.3).
func unfold(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "")
	return strings.TrimSpace(strings.ReplaceAll(s, "\n", ""))
}

// sanitize keeps a stage's header value from injecting lines.
func sanitize(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ", "\x00", "").Replace(s)
}

// addedFields is the prepend for HeaderAdd edits.
func addedFields(edits []sdk.HeaderEdit) []byte {
	var b bytes.Buffer
	for _, e := range edits {
		if e.Op == sdk.HeaderAdd && validFieldName(e.Name) {
			b.WriteString(fieldLines(e.Name, e.Value))
		}
	}
	return b.Bytes()
}

// fieldLines is the header field name: value as added to a message: the
// value sanitized, in RFC 2047 encoded words when it is not ASCII (a
// stage's text often is not, and only SMTPUTF8 mail may carry raw UTF-8 in
// its header, RFC 6532), and folded at its spaces so that lines stay within
// 78 characters where they can (RFC 5322 2.1.1; a single word longer than
// that is left whole).
func fieldLines(name, value string) string {
	value = headerText(sanitize(value))
	var b strings.Builder
	line := name + ":"
	for i, w := range strings.Split(value, " ") {
		if i > 0 && len(line)+1+len(w) > 78 && strings.TrimSpace(line) != name+":" {
			b.WriteString(line + "\r\n")
			line = ""
		}
		line += " " + w
	}
	b.WriteString(line + "\r\n")
	return b.String()
}

// prefixed is a Subject value (as on the wire, CRLF included) with prefix
// and a space before it. A prefix that must be encoded, put before a
// subject that starts with an encoded word, carries that space inside its
// own encoded word: the space between two encoded words is not displayed
// (RFC 2047 6.2), and [迷惑]未承諾広告 would read as one word.
func prefixed(prefix, value string) string {
	if !isASCII(prefix) && strings.HasPrefix(value, "=?") {
		return headerText(prefix+" ") + " " + value
	}
	return headerText(prefix) + " " + value
}

// headerText is s as header text: unchanged when ASCII, else RFC 2047
// encoded words (base64 of UTF-8, split into words of at most 75
// characters).
func headerText(s string) string {
	if isASCII(s) {
		return s
	}
	return mime.BEncoding.Encode("utf-8", s)
}

func validFieldName(n string) bool { return sdk.ValidFieldName(n) }

// needsRewrite: removals and a subject prefix change the spooled header.
func needsRewrite(dec *pipeline.Decision) bool {
	if dec == nil {
		return false
	}
	if dec.SubjectPrefix != "" {
		return true
	}
	for _, e := range dec.Headers {
		if e.Op == sdk.HeaderRemove {
			return true
		}
	}
	return false
}

// commit stores the message in store. The draft is committed as it is when
// only fields are added; otherwise (fields removed, subject prefixed, or the
// target is another store) the message is copied into a new draft there
// under the same queue ID (the one in the Received header, the reply and
// every log line), and the caller aborts the original.
func (s *session) commit(log *slog.Logger, store queue.Store, d queue.Draft, env *queue.Envelope, dec *pipeline.Decision, recvLen int) (string, error) {
	var prepend []byte
	if dec != nil {
		prepend = addedFields(dec.Headers)
	}
	if !needsRewrite(dec) && store == s.gc.srv.d.Queue {
		return d.ID(), d.Commit(env, prepend)
	}
	nd, err := store.NewDraftAs(d.ID())
	if err != nil {
		return "", err
	}
	defer func() { _ = nd.Abort() }()
	f, err := os.Open(d.Path())
	if err != nil {
		return "", err
	}
	defer f.Close()
	body := io.NewSectionReader(f, d.Offset()+int64(recvLen), d.Size()-int64(recvLen))
	if _, err := io.WriteString(nd, s.receivedHeader(nd.ID())); err != nil {
		return "", err
	}
	if err := rewriteHeader(nd, bufio.NewReader(body), dec); err != nil {
		return "", err
	}
	if err := nd.Commit(env, prepend); err != nil {
		return "", err
	}
	return nd.ID(), nil
}

// rewriteHeader copies r to w, dropping removed fields and prefixing the
// subject, then copies the body unchanged.
func rewriteHeader(w io.Writer, r *bufio.Reader, dec *pipeline.Decision) error {
	remove := map[string]bool{}
	prefix := ""
	if dec != nil {
		for _, e := range dec.Headers {
			if e.Op == sdk.HeaderRemove {
				remove[strings.ToLower(e.Name)] = true
			}
		}
		prefix = strings.TrimRight(sanitize(dec.SubjectPrefix), " \t") // one space is put after it below
	}
	var name string
	start := true // line starts a line: a line longer than r's buffer comes in several slices
	for {
		line, err := r.ReadSlice('\n')
		if len(line) == 0 && err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return err
		}
		if start && string(line) == "\r\n" {
			if _, err := w.Write(line); err != nil {
				return err
			}
			break
		}
		if start && line[0] != ' ' && line[0] != '\t' {
			var value string
			var colon bool
			name, value, colon = strings.Cut(string(line), ":")
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "subject" && colon && prefix != "" {
				line = []byte("Subject: " + prefixed(prefix, strings.TrimLeft(value, " \t")))
			}
		}
		start = err == nil
		if remove[name] {
			continue
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	_, err := io.Copy(w, r)
	return err
}
