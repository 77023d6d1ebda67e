package mime

import (
	"bytes"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// field is a raw header field, unfolded (RFC 5322 2.2.3) but not decoded.
type field struct {
	Name  string
	Value string
}

func getField(h []field, name string) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// splitHeader separates the header fields from the body at the first empty
// line. Lines that are neither fields nor continuations are dropped with a
// finding: real-world mail has them, and aborting would hide the body.
//
// A field's continuation lines are joined in a builder: appending to the
// string line by line copied the whole value each time, and a field folded
// a few hundred thousand times (a 1.6 MB header a stranger may send) took
// a minute of CPU in every stage that parses the message.
func (w *walker) splitHeader(raw []byte) ([]field, []byte) {
	var fields []field
	var cont strings.Builder // the last field's continuation lines, joined
	skipping := false        // past MaxHeaderFields, in a field not kept
	var kept keptNames       // the names keptPastLimit lists that a field already has
	endField := func() {
		if cont.Len() > 0 {
			fields[len(fields)-1].Value += cont.String()
			cont.Reset()
		}
	}
	for len(raw) > 0 {
		line, rest := cutLine(raw)
		trimmed := bytes.TrimRight(line, "\r\n")
		if len(trimmed) == 0 {
			endField()
			return fields, rest
		}
		raw = rest
		switch {
		case trimmed[0] == ' ' || trimmed[0] == '\t':
			if skipping {
				continue
			}
			if len(fields) > 0 {
				cont.WriteByte(' ')
				cont.Write(bytes.TrimSpace(trimmed))
			} else {
				w.find(FindHeaderMalformed)
			}
		default:
			name, value, ok := bytes.Cut(trimmed, []byte(":"))
			// RFC 5322 4.5 (obsolete syntax): white space may come between
			// the name and the colon, and mail clients honour such fields;
			// dropping "Content-Type : ..." would hide an attachment.
			name = bytes.TrimRight(name, " \t")
			if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
				if !(len(fields) == 0 && bytes.HasPrefix(trimmed, []byte("From "))) {
					w.find(FindHeaderMalformed)
				}
				continue
			}
			endField()
			k := keptPastLimit(name)
			if skipping = len(fields) >= w.lim.MaxHeaderFields && (k < 0 || kept&(1<<k) != 0); skipping {
				w.find(FindHeaderLimit) // once: a map lookup after the first
				continue
			}
			if k >= 0 {
				kept |= 1 << k
			}
			fields = append(fields, field{Name: string(name), Value: strings.TrimSpace(string(value))})
		}
	}
	endField()
	return fields, nil
}

// keptNames has bit i set for keptFields[i].
type keptNames uint16

// keptFields are the fields the walk reads (the MIME ones, and the
// fallbackFields that name a part) and those rules read. Past Limits.MaxHeaderFields, such a field is still kept if none of
// its name was: junk fields cannot hide them, and a flood of them (a
// million To: fields) keeps one.
var keptFields = [...]string{"content-type", "content-transfer-encoding", "content-disposition", "mime-version",
	"subject", "from", "to", "cc", "reply-to", "sender", "content-name", "x-sun-data-name"}

// keptPastLimit is name's index in keptFields, or -1.
func keptPastLimit(name []byte) int {
	for i, n := range keptFields {
		if bytes.EqualFold(name, []byte(n)) {
			return i
		}
	}
	return -1
}

// cutLine returns the first line including its LF, and the rest.
func cutLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i+1], b[i+1:]
	}
	return b, nil
}

// DecodeHeader decodes RFC 2047 encoded-words in a header value to UTF-8.
// Adjacent words in one charset are joined before decoding, so a character
// split across two words survives; a lying charset label, raw 8-bit bytes
// and raw ISO-2022-JP outside encoded-words are detected as in ToUTF8.
func DecodeHeader(s string) string {
	if !strings.Contains(s, "=?") && utf8.ValidString(s) && strings.IndexByte(s, 0x1b) < 0 {
		return s // nothing to decode (the common case): no walker to allocate
	}
	w := &walker{msg: &Message{}}
	return w.decodeHeader(s)
}

func (w *walker) decodeHeader(s string) string {
	if !strings.Contains(s, "=?") {
		return w.literal(s)
	}
	var out, lit strings.Builder // lit: text outside encoded-words, decoded as one run
	var pend []byte
	pendCS := ""
	flush := func() {
		if pend != nil {
			out.WriteString(w.headerText(pend, pendCS))
			pend, pendCS = nil, ""
		}
	}
	flushLit := func() {
		if lit.Len() > 0 {
			out.WriteString(w.literal(lit.String()))
			lit.Reset()
		}
	}
	prevWord := false
	for len(s) > 0 {
		i := strings.Index(s, "=?")
		if i < 0 {
			flush()
			lit.WriteString(s)
			break
		}
		cs, data, n, ok := w.encodedWord(s[i:])
		if !ok {
			// Raw ISO-2022-JP may hold "=?" (a JIS byte pair): keep the
			// run whole so that its escape sequences still apply.
			flush()
			lit.WriteString(s[:i+2])
			s, prevWord = s[i+2:], false
			continue
		}
		// RFC 2047 6.2: white space between adjacent encoded-words is ignored.
		if gap := s[:i]; !(prevWord && strings.TrimSpace(gap) == "") {
			flush()
			lit.WriteString(gap)
		}
		flushLit()
		if pend != nil && cs != pendCS {
			flush()
		}
		pend, pendCS = append(pend, data...), cs
		s, prevWord = s[i+n:], true
	}
	flush()
	flushLit()
	return out.String()
}

// literal returns text outside encoded-words, decoding raw 8-bit bytes and
// raw ISO-2022-JP, which is 7-bit (and so valid UTF-8) but for its escape
// sequences: old Japanese mailers put both in headers unencoded.
func (w *walker) literal(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0x1b) < 0 {
		return s
	}
	return w.toUTF8([]byte(s), "")
}

// encodedWord parses "=?charset?enc?text?=" at the start of s (RFC 2047 2).
func (w *walker) encodedWord(s string) (charset string, data []byte, n int, ok bool) {
	parts := strings.SplitN(s[2:], "?", 4)
	if len(parts) < 4 || !strings.HasPrefix(parts[3], "=") || len(parts[1]) != 1 {
		return "", nil, 0, false
	}
	charset, _, _ = strings.Cut(strings.ToLower(parts[0]), "*") // RFC 2231 5 language suffix
	text := parts[2]
	n = 2 + len(parts[0]) + 1 + len(parts[1]) + 1 + len(text) + 2
	switch parts[1] {
	case "B", "b":
		var bad bool
		data, bad = decodeBase64([]byte(text))
		if bad {
			w.find(FindEncodedWordBad)
		}
	case "Q", "q":
		data = decodeQ(text)
	default:
		w.find(FindEncodedWordBad)
		return "", nil, 0, false
	}
	return charset, data, n, true
}

// decodeQ decodes the RFC 2047 4.2 "Q" encoding, leniently.
func decodeQ(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '_':
			out = append(out, ' ')
		case c == '=' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			out = append(out, byte(v))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// parseMediaParams splits "type/sub; a=b; c*0*=..." leniently and returns
// the lower-cased value and the decoded parameters (lower-cased names), as
// mediaParams reads them.
func (w *walker) parseMediaParams(s string) (string, map[string]string) {
	value, params, _ := w.mediaParams(s)
	return value, params
}

// decodeParams decodes the parameters of one reading of a field by name.
// RFC 2231 continuations and charsets are joined and decoded here because
// the standard library drops parameters in charsets other than UTF-8.
func (w *walker) decodeParams(raw []rawParam) map[string]string {
	params := map[string]string{}
	type seg struct {
		idx int
		ext bool
		val string
	}
	ext := map[string][]seg{}
	for _, kv := range raw {
		name := kv.name
		base, suffix, starred := strings.Cut(name, "*")
		if !starred {
			params[name] = w.plainParam(kv.val)
			continue
		}
		isExt := strings.HasSuffix(name, "*")
		idx := 0
		if num := strings.TrimSuffix(suffix, "*"); num != "" {
			var err error
			if idx, err = strconv.Atoi(num); err != nil {
				continue
			}
		}
		ext[base] = append(ext[base], seg{idx, isExt, kv.val})
	}
	for base, segs := range ext {
		sort.SliceStable(segs, func(i, j int) bool { return segs[i].idx < segs[j].idx })
		var buf []byte
		charset := ""
		for i, sg := range segs {
			v := sg.val
			if sg.ext {
				if i == 0 {
					if cs, r, ok := strings.Cut(v, "'"); ok {
						_, v, _ = strings.Cut(r, "'")
						charset = strings.ToLower(cs)
					}
				}
				if u, err := url.PathUnescape(v); err == nil {
					v = u
				}
			}
			buf = append(buf, v...)
		}
		params[base] = w.headerText(buf, charset)
	}
	return params
}

// plainParam decodes a parameter without RFC 2231 syntax: many mailers put
// RFC 2047 words or raw 8-bit bytes there.
func (w *walker) plainParam(v string) string {
	if strings.Contains(v, "=?") {
		return w.decodeHeader(v)
	}
	return w.literal(v)
}

// rawParam is one name=value of a field as a reading split it, undecoded:
// at is the offset of its name in the parameter list, end that of the byte
// after its value.
type rawParam struct {
	name, val string
	at, end   int
}

// paramScanner reads the parameters of one header field. Each quoted value
// may be read three ways (see quoted), and a reading that does not close
// may run to the end of the field: it must not do so again for every
// parameter after it, or a field of n parameters costs n squared (20,000
// of them, a 180 KB header, took 25 s in every content stage that parses
// the message, and 40,000 took 99 s and 32 GB).
type paramScanner struct {
	// plain: read quoted values only the standard way (RFC 5322 3.2.4),
	// as a mail client that knows nothing of raw Japanese bytes does.
	plain bool
	// reread: a value was read another way than the standard one, so a
	// plain reader may see other parameters (see mediaParams).
	reread bool
	// jisUnclosed: an ISO-2022-JP reading ran off the end of the field.
	// Every later one would too: see scanQuoted.
	jisUnclosed bool
	scanned     int // bytes the readings examined, for the tests that hold it linear
}

// split tokenises "; a=b; c="d;e"" into name/value pairs.
func (p *paramScanner) split(list string) []rawParam {
	var out []rawParam
	s := list
	for {
		s = strings.TrimLeft(s, "; \t")
		if s == "" {
			return out
		}
		eq := strings.IndexAny(s, "=;")
		if eq < 0 || s[eq] == ';' {
			if eq < 0 {
				return out
			}
			s = s[eq:]
			continue
		}
		at := len(list) - len(s)
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			val, s = p.quoted(s[1:])
		} else {
			end := strings.IndexByte(s, ';')
			if end < 0 {
				end = len(s)
			}
			val, s = strings.TrimSpace(s[:end]), s[end:]
		}
		if name != "" {
			out = append(out, rawParam{name: name, val: val, at: at, end: len(list) - len(s)})
		}
	}
}

// quoted reads a quoted-string body after its opening quote (RFC 5322
// 3.2.4). Japanese mailers put raw ISO-2022-JP or Shift_JIS there without
// escaping anything, and their characters hold the bytes '"' and '\'
// (JIS ア is 0x25 0x22; Shift_JIS ソ and 表 end in 0x5C, the "dame-moji").
// So a value that is not UTF-8 read the standard way, or one with JIS
// escape sequences, is read again taking such bytes as part of their
// character; that reading is kept when it finds the closing quote.
//
// The standard and Shift_JIS readings close at the latest at the opening
// quote of the next parameter (a '"' after '=' is neither escaped nor a
// trail byte), so they cost what the parameter is long. The ISO-2022-JP
// reading takes a double-byte run as text up to the next escape, past any
// quote, so it may close far on or not at all. When it closes, the next
// parameter starts after it; when it does not, no later parameter's is
// tried (see scanQuoted), or each would run to the end of the field again.
//
// A reading other than the standard one may end the value elsewhere than a
// plain reader does, and so hide parameters from the walker that such a
// reader sees: mediaParams compares the two.
func (p *paramScanner) quoted(s string) (string, string) {
	v, rest, _ := p.scanQuoted(s, false, false)
	if p.plain {
		return v, rest
	}
	if !utf8.ValidString(v) {
		if sv, srest, closed := p.scanQuoted(s, false, true); closed {
			p.reread = true
			return sv, srest
		}
	}
	if !p.jisUnclosed && strings.IndexByte(v, 0x1b) >= 0 {
		if jv, jrest, closed := p.scanQuoted(s, true, false); closed {
			p.reread = true
			return jv, jrest
		}
		p.jisUnclosed = true
	}
	return v, rest
}

// scanQuoted reads a quoted-string body. With jis, the bytes after an
// ISO-2022-JP designation of a double-byte set or of half-width katakana
// (ESC $ @, ESC $ B, ESC ( I; RFC 1468) are text until the next escape;
// with sjis, a Shift_JIS lead byte takes the byte after it as its trail.
//
// With jis, every ESC sets the mode afresh (even after a backslash, which
// does not make an escape sequence text), so that two readings that meet
// the same ESC go on alike from it: once one ran off the end of the field,
// any later one would as soon as it meets its first ESC, which the earlier
// one met too (quoted relies on this).
func (p *paramScanner) scanQuoted(s string, jis, sjis bool) (val, rest string, closed bool) {
	var b strings.Builder
	wide := false
	i := 0
	defer func() { p.scanned += i }()
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case jis && c == 0x1b:
			wide = i+1 < len(s) && s[i+1] == '$' || i+2 < len(s) && s[i+1] == '(' && s[i+2] == 'I'
			b.WriteByte(c)
		case wide:
			b.WriteByte(c)
		case sjis && (c >= 0x81 && c <= 0x9f || c >= 0xe0 && c <= 0xfc) && i+1 < len(s) &&
			(s[i+1] >= 0x40 && s[i+1] <= 0x7e || s[i+1] >= 0x80 && s[i+1] <= 0xfc):
			b.WriteString(s[i : i+2])
			i++
		case c == '\\' && jis && i+1 < len(s) && s[i+1] == 0x1b:
			// dropped, as a quoted-pair would be; the ESC is read next
		case c == '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case c == '"':
			i++
			return b.String(), s[i:], true
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), "", false
}
