package smtpd

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"mime"
	"os"
	"strings"

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
	// Only the new bytes and the three before them can complete the
	// blank line: searching the whole buffer at every write was
	// quadratic for a header trickled in a few bytes at a time.
	from := max(h.buf.Len()-3, 0)
	h.buf.Write(p)
	if i := bytes.Index(h.buf.Bytes()[from:], []byte("\r\n\r\n")); i >= 0 {
		i += from
		h.buf.Truncate(min(i+4, maxHeaderCapture)) // the same cut however the bytes came
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

// utf8Text is s in UTF-8: raw 8-bit header bytes are decoded (see
// sdkmime.HeaderUTF8), so that stages and rules get the text and the
// plugin protocol, whose strings must be UTF-8, can carry it (a single such
// byte used to fail every stage's call).
func utf8Text(s string) string { return sdkmime.HeaderUTF8(s) }

// unfold joins folded lines (RFC 5322 2.2.3).
func unfold(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "")
	return strings.TrimSpace(strings.ReplaceAll(s, "\n", ""))
}

// sanitize keeps a stage's header value from injecting lines.
func sanitize(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ", "\x00", "").Replace(s)
}

// uniqueFields are the fields a message has at most one of (RFC 5322
// 3.6), lower case.
var uniqueFields = map[string]bool{"date": true, "from": true, "sender": true, "reply-to": true, "to": true,
	"cc": true, "bcc": true, "message-id": true, "in-reply-to": true, "references": true, "subject": true}

// headerPlan is what the data phase's edits do to the header.
type headerPlan struct {
	add     []sdk.HeaderEdit // fields put at the top, in order
	remove  map[string]bool  // lower-case names of the message's fields dropped
	prefix  string           // a tag's subject prefix, without trailing space
	subject bool             // add holds a Subject
}

// planHeader turns the edits, in stage order then rule order, into a
// plan. A field of which a message may hold one (RFC 5322 3.6) that is
// added replaces the message's own, and of several added the last wins:
// two stages that each add a Subject, or add one to a message that has one,
// would otherwise send two. The subject prefix applies to the Subject the
// message ends with, whichever that is (see rewriteHeader for a message
// left without one).
func planHeader(dec *pipeline.Decision) headerPlan {
	p := headerPlan{remove: map[string]bool{}}
	if dec == nil {
		return p
	}
	p.prefix = strings.TrimRight(sanitize(dec.SubjectPrefix), " \t") // one space is put after it
	last := map[string]int{}
	for i, e := range dec.Headers {
		name := strings.ToLower(e.Name)
		switch {
		case e.Op == sdk.HeaderRemove:
			p.remove[name] = true
		case e.Op == sdk.HeaderAdd && validFieldName(e.Name) && uniqueFields[name]:
			last[name] = i
			p.remove[name] = true
		}
	}
	for i, e := range dec.Headers {
		name := strings.ToLower(e.Name)
		if e.Op != sdk.HeaderAdd || !validFieldName(e.Name) || uniqueFields[name] && last[name] != i {
			continue
		}
		p.add = append(p.add, e)
		p.subject = p.subject || name == "subject"
	}
	return p
}

// addedFields is the prepend for the plan's added fields, the subject
// prefix put before an added Subject.
func addedFields(p headerPlan) []byte {
	var b bytes.Buffer
	for _, e := range p.add {
		if strings.EqualFold(e.Name, "subject") && p.prefix != "" {
			b.WriteString(foldField(e.Name, prefixed(p.prefix, headerText(sanitize(e.Value)))))
			continue
		}
		b.WriteString(fieldLines(e.Name, e.Value))
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
	return foldField(name, headerText(sanitize(value)))
}

// foldField is the field name: value, value already header text, folded
// as fieldLines says.
func foldField(name, value string) string {
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
	if strings.TrimSpace(value) == "" {
		return headerText(prefix) + strings.TrimLeft(value, " \t")
	}
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

// commit stores the message in store. The draft is committed as it is when
// only fields are added; otherwise (fields removed or replaced, subject
// prefixed, or the target is another store) the message is copied into a
// new draft there under the same queue ID (the one in the Received header,
// the reply and every log line), and the caller aborts the original.
func (s *session) commit(log *slog.Logger, store queue.Store, d queue.Draft, env *queue.Envelope, dec *pipeline.Decision, recvLen int, durable func(id string)) (string, error) {
	plan := planHeader(dec)
	prepend := addedFields(plan)
	if fields, id := s.missingFields(d.ID(), plan); fields != "" {
		prepend = append(prepend, fields...)
		if id != "" {
			s.msgID = id
		}
	}
	if len(plan.remove) == 0 && plan.prefix == "" && store == s.gc.srv.d.Queue {
		onDurable(d, durable)
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
	if err := rewriteHeader(nd, bufio.NewReader(body), plan); err != nil {
		return "", err
	}
	onDurable(nd, durable)
	if err := nd.Commit(env, prepend); err != nil {
		return "", err
	}
	return nd.ID(), nil
}

// onDurable has d call durable with its ID once its message is durable
// and before delivery can take it (queue.DurableNotifier), so that the
// queued line comes before the message's delivery lines.
func onDurable(d queue.Draft, durable func(id string)) {
	if n, ok := d.(queue.DurableNotifier); ok {
		id := d.ID()
		n.OnDurable(func() { durable(id) })
	}
}

// rewriteHeader copies r to w, dropping removed fields and prefixing the
// subject, then copies the body unchanged. A tag's prefix is there for the
// reader to see, so a message left without a Subject (it had none, or a
// stage removed it) gets one holding the prefix, at the end of its header.
func rewriteHeader(w io.Writer, r *bufio.Reader, p headerPlan) error {
	prefix := p.prefix
	if p.subject {
		prefix = "" // addedFields put it on the added Subject
	}
	subject := false // the message keeps a Subject of its own
	var name string
	start := true // line starts a line: a line longer than r's buffer comes in several slices
	for {
		line, err := r.ReadSlice('\n')
		if len(line) == 0 && err != nil {
			if err == io.EOF {
				return missingSubject(w, start, subject, prefix) // a header without a body
			}
			return err
		}
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return err
		}
		if start && string(line) == "\r\n" {
			if err := missingSubject(w, true, subject, prefix); err != nil {
				return err
			}
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
			if name == "subject" && colon && !p.remove[name] {
				subject = true
				if prefix != "" {
					line = []byte("Subject: " + prefixed(prefix, strings.TrimLeft(value, " \t")))
				}
			}
		}
		start = err == nil
		if p.remove[name] {
			continue
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	_, err := io.Copy(w, r)
	return err
}

// missingSubject writes the Subject holding only prefix when there is a
// prefix, the message kept no Subject, and its header so far ends with a
// whole line.
func missingSubject(w io.Writer, whole, kept bool, prefix string) error {
	if prefix == "" || kept || !whole {
		return nil
	}
	_, err := io.WriteString(w, foldField("Subject", headerText(prefix)))
	return err
}
