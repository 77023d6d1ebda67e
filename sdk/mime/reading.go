package mime

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"
)

// reading is b decoded in one charset: bad counts the replacement
// characters the decoder made for bytes that are not of that charset, good
// the characters beyond ASCII it decoded.
type reading struct {
	text      string
	bad, good int
	ok        bool // the charset can read b at all
}

// tolerable reports a declared charset's reading that is worth keeping
// despite its bad bytes: one (a footer's © in Latin-1, a character cut at
// the end of a part or between two encoded-words) in any real text, and
// beyond that about one character in ten. That is the share of bad bytes
// detect allows an unlabelled Shift_JIS or EUC-JP reading (one byte in
// twenty, two bytes a character), and one more for the label's word.
// WHATWG decoders and Thunderbird (encoding_rs) keep the declared charset
// whatever the damage and replace only the bad bytes; a mislabel is when
// its reading is mostly invalid, which this still tells.
func (r reading) tolerable() bool {
	return r.ok && r.good > 0 && (r.bad-1)*10 <= r.good
}

// likely reports a reading that detection may choose without a label:
// no more than one bad character in ten.
func (r reading) likely() bool {
	return r.ok && r.good > 0 && r.bad*10 <= r.good
}

// readAs decodes b as the named charset. US-ASCII has no tolerant reading:
// 8-bit bytes under it (or under no label) are for detection to read.
func readAs(b []byte, name string, enc encoding.Encoding, has2022 bool) reading {
	switch name {
	case "", csASCII:
		return reading{text: string(b), ok: !has2022 && isASCII(b)}
	case csUTF8:
		if has2022 {
			return reading{}
		}
		return readUTF8(b)
	case csISO2022JP:
		// x/text's decoder turns each 8-bit byte into U+FFFD and keeps its
		// state: a stray byte (a mailing list's footer) costs only itself.
		b = jisCompat(b)
	default:
		if has2022 {
			return reading{}
		}
	}
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return reading{}
	}
	r := reading{text: string(out), ok: true}
	for _, c := range r.text {
		switch {
		case c == utf8.RuneError:
			r.bad++
		case c >= utf8.RuneSelf:
			r.good++
		}
	}
	// A U+FFFD that b held encoded is text, not a bad byte; counting it as
	// one would call any b that is not UTF-8 bad.
	r.bad = max(r.bad-bytes.Count(b, []byte(string(utf8.RuneError))), 0)
	return r
}

// readUTF8 keeps valid UTF-8 as it is and makes each maximal subpart of
// an invalid sequence one U+FFFD, as the WHATWG Encoding Standard 8.1.1
// (and Thunderbird) do: a character cut short is one bad character, not
// one for each byte it kept.
func readUTF8(b []byte) reading {
	if utf8.Valid(b) {
		return reading{text: string(b), good: utf8.RuneCount(b) - asciiCount(b), ok: true}
	}
	var sb strings.Builder
	r := reading{ok: true}
	for i := 0; i < len(b); {
		c, size := utf8.DecodeRune(b[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			r.bad++
			size = utf8Subpart(b[i:])
		case c >= utf8.RuneSelf:
			r.good++
		}
		sb.WriteRune(c)
		i += size
	}
	r.text = sb.String()
	return r
}

// utf8Subpart is the length of the maximal subpart at the start of b, an
// invalid sequence: a lead byte and the continuation bytes that still
// fit it (the bounds of the WHATWG UTF-8 decoder), or the one bad byte.
func utf8Subpart(b []byte) int {
	c := b[0]
	need, lo, hi := 0, byte(0x80), byte(0xbf)
	switch {
	case c >= 0xc2 && c <= 0xdf:
		need = 1
	case c == 0xe0:
		need, lo = 2, 0xa0
	case c == 0xed:
		need, hi = 2, 0x9f
	case c >= 0xe1 && c <= 0xef:
		need = 2
	case c == 0xf0:
		need, lo = 3, 0x90
	case c == 0xf4:
		need, hi = 3, 0x8f
	case c >= 0xf1 && c <= 0xf3:
		need = 3
	}
	n := 1
	for ; n <= need && n < len(b) && b[n] >= lo && b[n] <= hi; n++ {
		lo, hi = 0x80, 0xbf
	}
	return n
}

func asciiCount(b []byte) int {
	n := 0
	for _, c := range b {
		if c < utf8.RuneSelf {
			n++
		}
	}
	return n
}

// rarerReading finds a reading of b in a charset whose byte patterns occur
// by chance more rarely than the declared one's, with no more bad bytes
// than the declared reading (decl) has. Multi-byte UTF-8 is almost never an
// accident, but its two-byte sequences are: half-width katakana in
// Shift_JIS (0xA1-0xDF) pair up as Latin and Greek letters, so on a tie
// UTF-8 must read mostly as characters of three bytes or more. EUC-JP's
// pairs of 0xA1-0xFE are rarer than Shift_JIS, which reads almost any
// bytes, EUC-JP ones included (as half-width katakana and kanji nobody
// uses); but any even run of half-width katakana is also EUC-JP, so it
// wins only where detection would choose it (eucOrSJIS). Raw ISO-2022-JP
// escapes under another label are detect's to find, and under their own
// label they are the rarest.
func rarerReading(b []byte, declared string, decl reading) (reading, string, bool) {
	if declared == csISO2022JP {
		return reading{}, "", false
	}
	if declared != csUTF8 {
		if r := readUTF8(b); r.likely() && (r.bad < decl.bad || r.bad == decl.bad && wide(r.text)) {
			return r, csUTF8, true
		}
	}
	if declared == csShiftJIS {
		if r := readAs(b, csEUCJP, japanese.EUCJP, false); r.likely() && r.bad <= decl.bad && eucOrSJIS(r.text, decl.text) {
			return r, csEUCJP, true
		}
	}
	return reading{}, "", false
}

// wide reports text whose characters beyond ASCII are mostly of three
// UTF-8 bytes or more (U+0800 up: kana, kanji, most scripts but Latin,
// Greek, Cyrillic, Hebrew and Arabic).
func wide(s string) bool {
	n2, n3 := 0, 0
	for _, r := range s {
		switch {
		case r >= 0x800 && r != utf8.RuneError:
			n3++
		case r >= utf8.RuneSelf && r < 0x800:
			n2++
		}
	}
	return n3 > n2
}
