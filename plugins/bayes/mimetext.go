package bayes

import (
	"bytes"
	"io"
	"strings"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/mime"
)

// Bounds on what is read from one message: a spam filter needs the start of
// a message, not all of a 25 MB attachment, and must stay fast on hostile input.
const (
	maxPartBytes = 256 << 10 // decoded text kept from one part
	maxTextBytes = 512 << 10 // decoded text kept from the whole message
	maxParts     = 64        // MIME parts visited
)

// Doc is a message decoded for tokenizing: header values with RFC 2047
// encoded-words decoded, and the text of each text part in UTF-8.
type Doc struct {
	Header   []sdk.HeaderField
	Parts    []Part
	Findings []string // anomalies the MIME walker found (they are evidence too)
	HTML     []string // source of the text/html parts (see rawHTML)
}

// Part is one MIME part as the tokenizer sees it.
type Part struct {
	ContentType string // lower-case media type, e.g. "text/html"
	Filename    string
	HTML        bool   // Text is still HTML markup (the tokenizer strips it)
	Text        string // UTF-8
}

// ParseDoc decodes a message with the shared MIME walker (sdk/mime:
// transfer encodings, charsets including mislabelled Japanese ones, HTML
// turned into text with link targets kept). It never fails on malformed
// MIME: whatever could be decoded is returned, and the walker's findings
// become tokens, since broken structure is itself evidence. A leading mbox
// "From " envelope line is skipped.
func ParseDoc(r io.Reader) *Doc {
	raw, _ := io.ReadAll(io.LimitReader(r, maxLearnBytes))
	return parseDoc(raw)
}

// parseDoc is ParseDoc on bytes already in memory.
func parseDoc(raw []byte) *Doc {
	if len(raw) > maxLearnBytes {
		raw = raw[:maxLearnBytes]
	}
	if bytes.HasPrefix(raw, []byte("From ")) {
		if nl := bytes.IndexByte(raw, '\n'); nl >= 0 {
			raw = raw[nl+1:]
		} else {
			raw = nil
		}
	}
	lim := mime.Limits{MaxParts: maxParts, MaxDepth: 10, MaxPartBytes: maxPartBytes, MaxTotalBytes: maxLearnBytes}
	m := mime.ParseBytes(raw, lim)
	d := &Doc{}
	d.Header, d.Findings = m.Header, m.Findings
	budget, hasHTML := maxTextBytes, false
	for _, p := range m.Parts {
		part := Part{ContentType: p.ContentType, Filename: p.Filename}
		if p.IsText && budget > 0 {
			text := p.Text
			if len(text) > budget {
				text = strings.ToValidUTF8(text[:budget], "")
			}
			budget -= len(text)
			part.Text = text
		}
		d.Parts = append(d.Parts, part)
		hasHTML = hasHTML || p.HTML
	}
	if hasHTML {
		d.HTML = rawHTML(raw)
	}
	return d
}
