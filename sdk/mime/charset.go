package mime

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/japanese"
)

// Charset names ToUTF8 reports.
const (
	csASCII     = "us-ascii"
	csUTF8      = "utf-8"
	csISO2022JP = "iso-2022-jp"
	csShiftJIS  = "shift_jis"
	csEUCJP     = "euc-jp"
	csLatin     = "windows-1252"
)

// japaneseAliases are labels Japanese mailers use that the WHATWG index
// (htmlindex) does not know or maps differently.
var japaneseAliases = map[string]string{
	"cp932": csShiftJIS, "windows-31j": csShiftJIS, "ms932": csShiftJIS, "x-sjis": csShiftJIS,
	"sjis": csShiftJIS, "shift-jis": csShiftJIS, "x-ms-cp932": csShiftJIS,
	"iso-2022-jp-1": csISO2022JP, "iso-2022-jp-2": csISO2022JP, "iso-2022-jp-ms": csISO2022JP,
	"cp50220": csISO2022JP, "cp50221": csISO2022JP, "csiso2022jp": csISO2022JP, "x-iso-2022-jp": csISO2022JP,
	"x-euc-jp": csEUCJP, "eucjp-ms": csEUCJP, "euc-jp-ms": csEUCJP, "cp51932": csEUCJP, "eucjp": csEUCJP,
	"x-euc": csEUCJP, "ujis": csEUCJP,
	"ascii": csASCII, "us_ascii": csASCII, "ansi_x3.4-1968": csASCII, "utf8": csUTF8,
	// ISO-2022-JP-3 and -2004 designate JIS X 0213, whose plane 1 shares
	// JIS X 0208's codes (jisCompat); x/text has no table of the rest, so
	// the characters only JIS X 0213 has become U+FFFD.
	"iso-2022-jp-3": csISO2022JP, "iso-2022-jp-2004": csISO2022JP,
}

// lookup finds the decoder of a label; ok is false for an unknown label.
// UTF-8 and US-ASCII return a nil encoding: their bytes are used as they are.
func lookup(label string) (name string, enc encoding.Encoding, ok bool) {
	name = strings.ToLower(strings.Trim(strings.TrimSpace(label), `"'`))
	if a, found := japaneseAliases[name]; found {
		name = a
	}
	switch name {
	case "", csASCII, csUTF8:
		return name, nil, true
	case csISO2022JP:
		return name, japanese.ISO2022JP, true
	case csShiftJIS:
		return name, japanese.ShiftJIS, true
	case csEUCJP:
		return name, japanese.EUCJP, true
	}
	if e, err := htmlindex.Get(name); err == nil {
		return name, e, true
	}
	if e, err := ianaindex.MIME.Encoding(name); err == nil && e != nil {
		return name, e, true
	}
	return name, nil, false
}

// ToUTF8 decodes b from charset to UTF-8 and reports the charset that was
// actually used. A few bytes that are not of the declared charset become
// U+FFFD and the rest is read in it; when its reading is mostly invalid
// (or no charset is declared), the charset is detected: ISO-2022-JP by its
// escape sequences, then UTF-8 validity, then Shift_JIS against EUC-JP by
// byte statistics, and finally Windows-1252 so that no byte is lost.
func ToUTF8(b []byte, charset string) (text string, used string) {
	w := &walker{msg: &Message{}}
	return w.decodeCharset(b, charset)
}

// HeaderUTF8 is a raw header field name or value in UTF-8, as the gateway
// gives it to stages in Message.Header: valid UTF-8 as it is (RFC 6532),
// raw 8-bit bytes (old Japanese mailers write Shift_JIS or EUC-JP into a
// header unencoded) decoded by ToUTF8's detection. RFC 2047 encoded words
// stay encoded: DecodeHeader decodes them. sdk/plugintest builds its
// headers with it too, so that a stage's tests see what the gateway sends.
func HeaderUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	t, _ := ToUTF8([]byte(s), "")
	return t
}

// toUTF8 is ToUTF8 that records findings.
func (w *walker) toUTF8(b []byte, charset string) string {
	s, _ := w.decodeCharset(b, charset)
	return s
}

func (w *walker) decodeCharset(b []byte, charset string) (string, string) {
	name, enc, known := lookup(charset)
	if !known {
		w.find(FindCharsetUnknown)
	}
	has2022 := hasISO2022Escape(b)
	var declared reading
	if known {
		declared = readAs(b, name, enc, has2022)
		if declared.ok && declared.bad == 0 {
			return declared.text, orASCII(name)
		}
	}
	if declared.ok {
		// Some bytes are not of the declared charset. A charset whose
		// byte patterns are rarer by chance reading them with no more bad
		// bytes is what they are; else a label whose reading has only a
		// few bad bytes is believed, and only those bytes are lost.
		if r, cs, found := rarerReading(b, name, declared); found {
			w.find(FindMislabelled)
			return r.text, cs
		}
		if declared.tolerable() {
			return declared.text, name
		}
	}
	s, used, sure := detect(b, has2022)
	if !sure && known && enc != nil {
		// Nothing fits better: keep the declared charset's reading.
		out, _ := enc.NewDecoder().Bytes(b)
		return string(out), name
	}
	// Detection may come back to the declared charset (ISO-2022-JP with
	// characters its tables lack): that is no mislabel.
	if name != "" && known && used != name {
		w.find(FindMislabelled)
	}
	return s, used
}

func orASCII(name string) string {
	if name == "" {
		return csASCII
	}
	return name
}

// decodeAs decodes b as the named charset; ok is false when the bytes are
// not all valid for it.
func decodeAs(b []byte, name string, enc encoding.Encoding, has2022 bool) (string, bool) {
	r := readAs(b, name, enc, has2022)
	return r.text, r.ok && r.bad == 0
}

// detect guesses the charset of b; sure is false when only the Latin
// fallback fits.
func detect(b []byte, has2022 bool) (string, string, bool) {
	if has2022 {
		// Raw ISO-2022-JP: 7-bit, or with a stray 8-bit byte or two.
		if r := readAs(b, csISO2022JP, japanese.ISO2022JP, true); isASCII(b) || r.likely() {
			return r.text, csISO2022JP, true
		}
	}
	if r := readUTF8(b); r.bad == 0 || r.likely() {
		return r.text, csUTF8, true
	}
	sj, high := sjisStats(b)
	eu := eucErrors(b)
	if eu == sj && eu*20 <= high {
		// Both fit by their byte ranges: every run of an even number of
		// half-width katakana bytes (0xA1-0xDF) in Shift_JIS reads as EUC-JP
		// kanji too ("ﾃﾞｰﾀ" as 筑粟). The readings decide (eucOrSJIS).
		euOut, euOK := decodeAs(b, csEUCJP, japanese.EUCJP, false)
		sjOut, sjOK := decodeAs(b, csShiftJIS, japanese.ShiftJIS, false)
		switch {
		case euOK && (!sjOK || eucOrSJIS(euOut, sjOut)):
			return euOut, csEUCJP, true
		case sjOK:
			return sjOut, csShiftJIS, true
		}
	}
	cs, enc, errs := csShiftJIS, encoding.Encoding(japanese.ShiftJIS), sj
	if eu < sj {
		cs, enc, errs = csEUCJP, japanese.EUCJP, eu
	}
	if errs*20 <= high { // a few bad bytes become U+FFFD
		if out, err := enc.NewDecoder().Bytes(b); err == nil {
			return string(out), cs, true
		}
	}
	out, _ := charmap.Windows1252.NewDecoder().Bytes(b)
	return string(out), csLatin, false
}

// eucOrSJIS chooses between two valid readings of the same bytes: EUC-JP
// when it reads as Japanese prose (more kana and Japanese punctuation than
// the Shift_JIS reading has), when the Shift_JIS reading puts a sound mark
// (ﾞ ﾟ) where none can go, or when it glues a kanji to half-width katakana
// and the EUC-JP reading does not; else Shift_JIS, whose half-width
// katakana are what such bytes mostly are in mail (Windows senders' raw
// headers, spam spelling words in ﾊﾝｶｸ). A short EUC-JP run of kanji alone,
// whose bytes all lie in 0xA1-0xDF, is then read as half-width katakana:
// there is no telling them apart without a dictionary.
func eucOrSJIS(euc, sjis string) bool {
	if prose(euc) != prose(sjis) {
		return prose(euc) > prose(sjis)
	}
	return misplacedMark(sjis) || kanaKanji(sjis) && !kanaKanji(euc)
}

// kanaKanji reports a kanji next to a half-width katakana, with nothing
// between. Where EUC-JP bytes also read as Shift_JIS, the Shift_JIS kanji
// are those of leads 0xE0-0xFC (JIS level 2 and the IBM extensions: 羃 of
// 激安, 郞 of 副業), rare in any text and rarer still inside a word of
// half-width katakana, which Windows mailers write for katakana, not kanji.
func kanaKanji(s string) bool {
	prevKana, prevKanji := false, false
	for _, r := range s {
		kana := r >= 0xff66 && r <= 0xff9f // ｦ-ﾟ
		kanji := unicode.Is(unicode.Han, r)
		if kana && prevKanji || kanji && prevKana {
			return true
		}
		prevKana, prevKanji = kana, kanji
	}
	return false
}

// prose counts hiragana, full-width katakana and CJK punctuation.
func prose(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x3000 && r <= 0x30ff {
			n++
		}
	}
	return n
}

// misplacedMark reports a half-width voiced (ﾞ) or semi-voiced (ﾟ) sound
// mark that follows no kana that takes it: never so in Japanese.
func misplacedMark(s string) bool {
	prev := rune(0)
	for _, r := range s {
		switch r {
		case 0xff9e: // ﾞ: after ｳ, ｶ-ｺ, ｻ-ｿ, ﾀ-ﾄ, ﾊ-ﾎ (and ﾜ, ｦ in loanwords)
			if !(prev == 0xff73 || prev >= 0xff76 && prev <= 0xff84 || prev >= 0xff8a && prev <= 0xff8e ||
				prev == 0xff9c || prev == 0xff66) {
				return true
			}
		case 0xff9f: // ﾟ: after ﾊ-ﾎ
			if !(prev >= 0xff8a && prev <= 0xff8e) {
				return true
			}
		}
		prev = r
	}
	return false
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// hasISO2022Escape reports the JIS designations of RFC 1468:
// ESC $ @, ESC $ B, ESC ( J, and ESC ( I for half-width katakana; and the
// four-byte ones of ISO-2022-JP-1 (RFC 2237), -3 and -2004 (JIS X 0213):
// ESC $ ( B, ESC $ ( D, ESC $ ( O, ESC $ ( Q and ESC $ ( P (plane 2).
func hasISO2022Escape(b []byte) bool {
	for i := bytes.IndexByte(b, 0x1b); i >= 0 && i+2 < len(b); {
		s := b[i+1 : i+3]
		if s[0] == '$' && (s[1] == '@' || s[1] == 'B') || s[0] == '(' && (s[1] == 'J' || s[1] == 'I') {
			return true
		}
		if s[0] == '$' && s[1] == '(' && i+3 < len(b) && bytes.IndexByte([]byte("BDOQP"), b[i+3]) >= 0 {
			return true
		}
		j := bytes.IndexByte(b[i+1:], 0x1b)
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// jisCompat rewrites what x/text's ISO-2022-JP decoder does not know into
// what it does: ESC $ ( B (JIS X 0208 designated in four bytes), ESC $ ( O
// and ESC $ ( Q (JIS X 0213 plane 1, ISO-2022-JP-3 and -2004: a superset
// of JIS X 0208 whose shared characters have the same codes) become ESC $ B,
// and SO ... SI (half-width katakana as Microsoft's CP50222 writes them)
// become ESC ( I ... ESC ( B. Otherwise the decoder stops understanding
// the text at the first such sequence and every word after it is lost.
// JIS X 0213 plane 2 (ESC $ ( P) has no table in x/text: each of its pairs
// becomes 0x22 0x2F, a code JIS X 0208 leaves empty, so that it decodes
// to one U+FFFD and the pairs after it stay aligned.
func jisCompat(b []byte) []byte {
	if !bytes.Contains(b, []byte("\x1b$(")) && bytes.IndexByte(b, 0x0e) < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+8)
	shifted, plane2 := false, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == 0x1b && i+3 < len(b) && b[i+1] == '$' && b[i+2] == '(' && bytes.IndexByte([]byte("BOQP"), b[i+3]) >= 0:
			out, plane2 = append(out, "\x1b$B"...), b[i+3] == 'P'
			i += 3
		case c == 0x1b || c == '\n':
			out, plane2 = append(out, c), false
		case plane2 && c >= 0x21 && c <= 0x7e && i+1 < len(b) && b[i+1] >= 0x21 && b[i+1] <= 0x7e:
			out = append(out, 0x22, 0x2f)
			i++
		case c == 0x0e:
			out, shifted = append(out, "\x1b(I"...), true
		case c == 0x0f && shifted:
			out, shifted = append(out, "\x1b(B"...), false
		default:
			out = append(out, c)
		}
	}
	return out
}

// sjisStats counts bytes that cannot be Shift_JIS, and bytes >= 0x80.
func sjisStats(b []byte) (errs, high int) {
	for i := 0; i < len(b); {
		c := b[i]
		if c >= 0x80 {
			high++
		}
		switch {
		case c < 0x80, c >= 0xa1 && c <= 0xdf: // ASCII, half-width katakana
			i++
		case (c >= 0x81 && c <= 0x9f || c >= 0xe0 && c <= 0xfc) && i+1 < len(b) &&
			(b[i+1] >= 0x40 && b[i+1] <= 0x7e || b[i+1] >= 0x80 && b[i+1] <= 0xfc):
			high++
			i += 2
		default:
			errs++
			i++
		}
	}
	return errs, high
}

// eucErrors counts bytes that cannot be EUC-JP.
func eucErrors(b []byte) int {
	errs := 0
	inRange := func(j int, lo, hi byte) bool { return j < len(b) && b[j] >= lo && b[j] <= hi }
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c < 0x80:
			i++
		case c == 0x8e && inRange(i+1, 0xa1, 0xdf):
			i += 2
		case c == 0x8f && inRange(i+1, 0xa1, 0xfe) && inRange(i+2, 0xa1, 0xfe):
			i += 3
		case c >= 0xa1 && c <= 0xfe && inRange(i+1, 0xa1, 0xfe):
			i += 2
		default:
			errs++
			i++
		}
	}
	return errs
}
