// Package mime walks an Internet message (RFC 5322, MIME RFC 2045-2049) for
// content stages: it decodes header fields (RFC 2047, RFC 2231), transfer
// encodings (base64, quoted-printable) and charsets, so that a stage matches
// words against UTF-8 text and inspects attachments as decoded bytes.
//
// Japanese mail is first-class: ISO-2022-JP, Shift_JIS and EUC-JP are decoded,
// and a part whose charset label lies (Shift_JIS labelled ISO-2022-JP is the
// common case) is detected and decoded anyway, with the finding
// "charset.mislabelled".
//
// The walker never fails on malformed input: every anomaly becomes a finding
// in Message.Findings (see the Finding constants), and the walk is bounded in
// parts, depth and decoded bytes by Limits. Parse returns an error only when
// reading fails.
//
// The whole message is held in memory while it is walked (it is bounded by
// Limits.MaxTotalBytes), so that a broken boundary or a malformed header can
// be recovered from instead of aborting the walk as a streaming reader would.
// A stage walks its message with ParseMessage, which reads it into one
// buffer of its size (sdk.Message.ReadAll), and passes Check's context:
// ParseMessage and ParseContext stop between parts when it is done. A
// stage that reads text only sets Limits.TextOnly, and attachments are
// then measured against the limits but not decoded.
package mime

import (
	"context"
	"io"
	"strings"

	"github.com/portcullis-mta/portcullis/sdk"
)

// Findings: anomalies the walker reports. Stages turn them into tags.
const (
	FindBase64Invalid   = "mime.base64.invalid"    // bytes outside the base64 alphabet or bad length
	FindQPInvalid       = "mime.qp.invalid"        // malformed quoted-printable escape
	FindEncodingUnknown = "mime.encoding.unknown"  // an unknown Content-Transfer-Encoding
	FindBoundaryBroken  = "mime.boundary.broken"   // multipart without its boundary or close delimiter
	FindHeaderMalformed = "mime.header.malformed"  // a header line that is not a field
	FindPartsLimit      = "mime.limit.parts"       // more parts than Limits.MaxParts
	FindDepthLimit      = "mime.limit.depth"       // nesting deeper than Limits.MaxDepth
	FindPartTruncated   = "mime.limit.part_bytes"  // a part decoded to more than Limits.MaxPartBytes
	FindTotalLimit      = "mime.limit.total_bytes" // the message or its decoded parts over Limits.MaxTotalBytes
	FindHeaderLimit     = "mime.limit.header"      // a header of more than Limits.MaxHeaderFields fields
	FindCharsetUnknown  = "charset.unknown"        // a charset label nobody knows
	FindMislabelled     = "charset.mislabelled"    // bytes not valid for the declared charset; another one decoded them
	FindEncodedWordBad  = "mime.encoded_word.invalid"
	// FindParamAmbiguous: a quoted parameter value read as raw
	// ISO-2022-JP or Shift_JIS hid parameters that a plain RFC 2045
	// reader sees (a filename= inside a double-byte run never left):
	// the walker adds them, and Part.PlainFilenames has the names. Or a
	// multipart gives its boundary more than once: its body is walked
	// under each one it holds delimiters of (see multiparts).
	FindParamAmbiguous = "mime.param.ambiguous"
)

// Limits bound the walk. A zero field means the default.
type Limits struct {
	MaxParts      int   // leaf and container parts counted together
	MaxDepth      int   // multipart or message/rfc822 nesting
	MaxPartBytes  int64 // decoded bytes kept per part
	MaxTotalBytes int64 // raw message bytes read, and decoded bytes kept over all parts
	// MaxHeaderFields bounds the fields kept of one header (the message's
	// or a part's). Past it a field the walk or the stages need
	// (Content-Type, -Transfer-Encoding, -Disposition, -Name,
	// X-Sun-Data-Name, MIME-Version, Subject, From, To, Cc, Reply-To,
	// Sender) is kept only if none of its name was, so junk fields cannot
	// push it out of sight.
	MaxHeaderFields int
	// TextOnly asks for the text alone: no Part keeps a Body, and parts
	// that are not text/* are not decoded, only measured, so that a stage
	// matching words (textfilter) does not hold a message's attachments
	// decoded. The limits count the bytes a Body would have held, so
	// Findings, Truncated and every Text are the same as without it.
	TextOnly bool
}

// DefaultLimits are generous for real mail and small enough to bound a
// hostile message: 500 parts, depth 20, 16 MiB per part, 64 MiB in all,
// 1,000 header fields (real mail has tens, and a loop is cut at 100
// Received fields): six million empty fields in a 24 MB message took a
// stage a gigabyte and nine seconds.
func DefaultLimits() Limits {
	return Limits{MaxParts: 500, MaxDepth: 20, MaxPartBytes: 16 << 20, MaxTotalBytes: 64 << 20, MaxHeaderFields: 1000}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxParts <= 0 {
		l.MaxParts = d.MaxParts
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxPartBytes <= 0 {
		l.MaxPartBytes = d.MaxPartBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = d.MaxTotalBytes
	}
	if l.MaxHeaderFields <= 0 {
		l.MaxHeaderFields = d.MaxHeaderFields
	}
	return l
}

// Part is one leaf of the MIME tree.
type Part struct {
	Path            string // IMAP-style section number: "1", "1.2"; "1.u1" for a file uuencoded in part 1, "1.y1" yEnc-encoded
	Depth           int    // 0 for the top-level body
	ContentType     string // lower-case media type, "text/plain" when absent (RFC 2045 5.2)
	Charset         string // as declared, lower-case
	DetectedCharset string // the charset that decoded Text, when it differs from Charset
	Filename        string // decoded (RFC 2231 in any charset, RFC 2047, raw 8-bit)
	AltFilename     string // Content-Type's name= when Content-Disposition's filename= differs: clients differ on which they use
	Disposition     string // lower-case: "inline", "attachment" or ""
	IsText          bool   // text/* (Text is set)
	HTML            bool   // text/html (Text is the HTML turned into text)
	Text            string // text parts: UTF-8
	Body            []byte // decoded bytes of non-text parts and of text attachments
	Truncated       bool   // Body or Text was cut at Limits.MaxPartBytes

	// PlainFilenames are the other names the part gives its file: those
	// a plain RFC 2045/2231 reader gives where the walker read a quoted
	// value as raw Japanese and the two readings differ (see
	// FindParamAmbiguous), and the values of a filename= or name= given
	// twice in one field that the walker did not keep (it keeps the last,
	// a client may take the first): Content-Disposition's, then
	// Content-Type's; then the Content-Name and X-Sun-Data-Name fields
	// Thunderbird falls back to (Filename when no parameter names the
	// part); then each name cut at a NUL it holds, as Windows saves it.
	PlainFilenames []string

	plainSeen map[string]bool // PlainFilenames as a set (addPlainName)
}

// Names returns every name the part gives its file, Filename first, then
// AltFilename and PlainFilenames: a stage judging a file by its name must
// judge them all, as clients differ on which one they save it under.
func (p *Part) Names() []string {
	var names []string
	for _, n := range append([]string{p.Filename, p.AltFilename}, p.PlainFilenames...) {
		if n != "" {
			names = append(names, n)
		}
	}
	return names
}

// addNULPrefixes adds to PlainFilenames the start, up to its first NUL,
// of each name holding one (RFC 2231 lets a name hold "%00", RFC 2047 a
// "=00"): Windows' file APIs take a name as a C string, and so save
// "invoice.js\x00.txt" as invoice.js.
func (p *Part) addNULPrefixes() {
	for _, n := range p.Names() {
		if pre, _, ok := strings.Cut(n, "\x00"); ok && pre != "" {
			p.addPlainName(pre)
		}
	}
}

// addPlainName adds n to PlainFilenames unless the part has that name
// already. A header may give thousands of names (one parameter repeated):
// a set keeps this linear, where a search of the list for each was
// quadratic (12,000 names holding a NUL took 30 s).
func (p *Part) addPlainName(n string) {
	if n == "" || n == p.Filename || n == p.AltFilename {
		return
	}
	if p.plainSeen == nil {
		p.plainSeen = make(map[string]bool, len(p.PlainFilenames)+1)
		for _, m := range p.PlainFilenames {
			p.plainSeen[m] = true
		}
	}
	if !p.plainSeen[n] {
		p.plainSeen[n] = true
		p.PlainFilenames = append(p.PlainFilenames, n)
	}
}

// IsAttachment reports whether the part is meant as a file rather than as
// the message's own text.
func (p *Part) IsAttachment() bool {
	return p.Disposition == "attachment" || p.Filename != "" || !p.IsText
}

// Message is the walked message.
type Message struct {
	Header   []sdk.HeaderField // top-level fields, values decoded to UTF-8
	Subject  string            // decoded
	Parts    []*Part           // leaves in document order
	Findings []string          // distinct anomalies, in the order found
}

// Get returns the first decoded value of header field name, or "".
func (m *Message) Get(name string) string {
	for _, f := range m.Header {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Parse reads and walks one message. Files uuencoded or yEnc-encoded in a
// plain text part (as older mailers and newsreaders send them) become parts
// of their own after it. The error is only ever a read error;
// malformed input yields Findings.
func Parse(r io.Reader, lim Limits) (*Message, error) {
	return ParseContext(context.Background(), r, lim)
}

// ParseContext is Parse that gives up when ctx is done: the read stops,
// the walk stops between parts, and the error is ctx's. A stage passes
// Check's context, so that a call the gateway gave up on (its timeout)
// stops using the plugin's CPU and memory.
func ParseContext(ctx context.Context, r io.Reader, lim Limits) (*Message, error) {
	lim = lim.withDefaults()
	raw, err := io.ReadAll(io.LimitReader(ctxReader{ctx, r}, lim.MaxTotalBytes+1))
	if err != nil {
		return nil, err
	}
	return parse(ctx, raw, lim)
}

// ctxReader is a reader that ends with ctx's error once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// ParseMessage reads and walks a stage's message (see sdk.Message.ReadAll):
// into one buffer allocated at the message's size, where Parse, not
// knowing the size, lets its buffer double as it grows (a 25 MiB message
// cost a stage three times its size), and within the plugin's message
// budget, waiting for it no longer than ctx. The walk stops between parts
// when ctx is done, as ParseContext's does. The error is a read error or
// ctx's; malformed input yields Findings.
func ParseMessage(ctx context.Context, msg *sdk.Message, lim Limits) (*Message, error) {
	lim = lim.withDefaults()
	raw, err := msg.ReadAll(ctx, lim.MaxTotalBytes+1)
	if err != nil {
		return nil, err
	}
	return parse(ctx, raw, lim)
}

// ParseBytes is Parse of a message already in memory, without copying it
// (a stage classifying thousands of messages a second would otherwise copy
// each one first). raw is only read; the Message may share its memory.
func ParseBytes(raw []byte, lim Limits) *Message {
	m, _ := parse(context.Background(), raw, lim.withDefaults())
	return m
}

func parse(ctx context.Context, raw []byte, lim Limits) (*Message, error) {
	w := &walker{ctx: ctx, lim: lim, msg: &Message{}}
	if int64(len(raw)) > lim.MaxTotalBytes {
		raw = raw[:lim.MaxTotalBytes]
		w.find(FindTotalLimit)
	}
	hdr, body := w.splitHeader(raw)
	for _, f := range hdr {
		w.msg.Header = append(w.msg.Header, sdk.HeaderField{Name: f.Name, Value: w.decodeHeader(f.Value)})
	}
	w.msg.Subject = w.msg.Get("Subject")
	w.entity(hdr, body, "", 0)
	if w.err != nil {
		return nil, w.err
	}
	return w.msg, nil
}

// walker carries the state of one Parse.
type walker struct {
	ctx     context.Context
	err     error // ctx's, once the walk stopped for it
	lim     Limits
	msg     *Message
	parts   int
	decoded int64
	seen    map[string]bool
	// readings counts the multiparts walked again under another
	// boundary (see multiparts).
	readings int
}

// find records a finding once.
func (w *walker) find(f string) {
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	if !w.seen[f] {
		w.seen[f] = true
		w.msg.Findings = append(w.msg.Findings, f)
	}
}

// stopped reports whether ctx is done, and the walk must go no further.
// It is asked before each part: a part's work is bounded by the limits,
// and asking per byte would cost the walk more than it saves.
func (w *walker) stopped() bool {
	if w.err == nil {
		w.err = w.ctx.Err()
	}
	return w.err != nil
}
