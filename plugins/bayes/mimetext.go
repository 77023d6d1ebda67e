package bayes

import (
	"bufio"
	"io"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // ISO-2022-JP, Shift_JIS, EUC-JP and the rest of x/text
	"github.com/portcullis-mta/portcullis/sdk"
)

// Bounds on what is read from one message: a spam filter needs the start of
// a message, not all of a 25 MB attachment, and must stay fast on hostile input.
const (
	maxPartBytes = 256 << 10 // decoded text read from one part
	maxTextBytes = 512 << 10 // decoded text read from the whole message
	maxParts     = 64        // MIME parts visited
)

// Doc is a message decoded for tokenizing: header values with RFC 2047
// encoded-words decoded, and the text of each text part in UTF-8.
type Doc struct {
	Header []sdk.HeaderField
	Parts  []Part
}

// Part is one MIME part as the tokenizer sees it.
type Part struct {
	ContentType string // lower-case media type, e.g. "text/html"
	Filename    string
	HTML        bool
	Text        string // UTF-8; HTML still marked up (the tokenizer strips it)
}

// ParseDoc decodes a message. It never fails on malformed MIME: whatever
// could be decoded is returned, since broken structure is itself spam evidence.
// A leading mbox "From " envelope line is skipped.
func ParseDoc(r io.Reader) *Doc {
	br := bufio.NewReaderSize(r, 4096)
	if peek, _ := br.Peek(5); string(peek) == "From " {
		_, _ = br.ReadString('\n')
	}
	d := &Doc{}
	ent, err := message.Read(br)
	if ent == nil {
		d.Parts = append(d.Parts, rawPart(br, err))
		return d
	}
	d.Header = decodeHeader(ent.Header)
	budget := maxTextBytes
	parts := 0
	_ = ent.Walk(func(_ []int, e *message.Entity, err error) error {
		if e == nil {
			return nil
		}
		parts++
		if parts > maxParts {
			return io.EOF
		}
		p := describe(e)
		if strings.HasPrefix(p.ContentType, "multipart/") {
			return nil
		}
		if !strings.HasPrefix(p.ContentType, "text/") || budget <= 0 {
			p.Text = ""
			d.Parts = append(d.Parts, p)
			return nil
		}
		limit := min(maxPartBytes, budget)
		b, _ := io.ReadAll(io.LimitReader(e.Body, int64(limit)))
		budget -= len(b)
		p.Text = strings.ToValidUTF8(string(b), "\uFFFD")
		d.Parts = append(d.Parts, p)
		return nil
	})
	return d
}

// rawPart keeps whatever follows an unparsable header as plain text.
func rawPart(r io.Reader, _ error) Part {
	b, _ := io.ReadAll(io.LimitReader(r, maxPartBytes))
	return Part{ContentType: "text/plain", Text: strings.ToValidUTF8(string(b), "\uFFFD")}
}

func describe(e *message.Entity) Part {
	ct, params, err := e.Header.ContentType()
	if err != nil || ct == "" {
		ct = "text/plain"
	}
	ct = strings.ToLower(ct)
	p := Part{ContentType: ct, HTML: ct == "text/html"}
	if name := params["name"]; name != "" {
		p.Filename = name
	}
	if _, dp, err := e.Header.ContentDisposition(); err == nil && dp["filename"] != "" {
		p.Filename = dp["filename"]
	}
	return p
}

func decodeHeader(h message.Header) []sdk.HeaderField {
	var out []sdk.HeaderField
	fields := h.Fields()
	for fields.Next() {
		v, err := fields.Text()
		if err != nil && v == "" {
			v = fields.Value()
		}
		out = append(out, sdk.HeaderField{Name: fields.Key(), Value: v})
	}
	return out
}
