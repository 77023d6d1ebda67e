package mime

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets for the decoders a stranger's bytes reach before any stage
// sees them: charsets (the body of every text part), RFC 2047 words (every
// header field) and media-type parameters (every Content-Type and
// Content-Disposition). Their seeds are in testdata/fuzz/<target>/: the
// Japanese charsets labelled truly and falsely, the ISO-2022-JP variants,
// encoded words split and malformed, RFC 2231 continuations, and the
// quoted values with raw JIS and Shift_JIS that once cost quadratic time.

// maxGrowth bounds how much longer than its input a decoder's UTF-8 may be:
// a byte becomes at most one character of three bytes (a Windows-1252 or
// half-width katakana byte, or U+FFFD for a byte that is not text).
const maxGrowth = 3

// FuzzToUTF8: any bytes under any label decode to valid UTF-8 of bounded
// length, and text that needs no decoding comes out as it went in.
func FuzzToUTF8(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, label string) {
		text, used := ToUTF8(b, label)
		if !utf8.ValidString(text) {
			t.Fatalf("ToUTF8(%q, %q) = %q: not UTF-8", b, label, text)
		}
		if used == "" {
			t.Fatalf("ToUTF8(%q, %q) names no charset", b, label)
		}
		if len(text) > maxGrowth*len(b) {
			t.Fatalf("ToUTF8 made %d bytes of %d", len(text), len(b))
		}
		// Bytes with no escape sequence that are ASCII, or UTF-8 where
		// that is the label, are text as they are.
		if hasISO2022Escape(b) {
			return
		}
		switch l := strings.ToLower(label); {
		case isASCII(b) && (l == "" || l == "us-ascii" || l == "utf-8" || l == "shift_jis" || l == "euc-jp"),
			l == "utf-8" && utf8.Valid(b):
			if text != string(b) {
				t.Fatalf("ToUTF8(%q, %q) = %q, want it unchanged", b, label, text)
			}
		}
	})
}

// FuzzDecodeHeader: a header value decodes to valid UTF-8 of bounded
// length, a value with nothing to decode is returned as it is, and UTF-8
// text survives being sent as an encoded-word.
func FuzzDecodeHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		got := DecodeHeader(s)
		if !utf8.ValidString(got) {
			t.Fatalf("DecodeHeader(%q) = %q: not UTF-8", s, got)
		}
		if len(got) > maxGrowth*len(s) {
			t.Fatalf("DecodeHeader made %d bytes of %d", len(got), len(s))
		}
		if !utf8.ValidString(s) || hasISO2022Escape([]byte(s)) {
			return
		}
		if !strings.Contains(s, "=?") && got != s {
			t.Fatalf("DecodeHeader(%q) = %q, want it unchanged", s, got)
		}
		// RFC 2047 4.1: any UTF-8 text can travel as a "B" encoded-word.
		word := "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
		if got := DecodeHeader(word); got != s {
			t.Fatalf("DecodeHeader(%q) = %q, want %q", word, got, s)
		}
	})
}

// FuzzMediaParams: a Content-Type or Content-Disposition value splits into
// a lower-case value and parameters of valid UTF-8 whose total length is
// bounded by the input's (a byte is in at most two values: the walker's
// reading and, where it hides parameters, the plain one; see mediaParams),
// the quoted values' readings examine no byte more than a few times (see
// paramScanner.quoted), however the parameters are shaped, and no
// parameter a plain RFC 2045 reader sees is missing.
func FuzzMediaParams(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		w := &walker{msg: &Message{}}
		value, params := w.parseMediaParams(s)
		_, list, _ := strings.Cut(s, ";")
		plain := paramScanner{plain: true}
		for _, kv := range plain.split(list) {
			if _, ok := params[kv.name]; !ok && isToken(kv.name) && !strings.Contains(kv.name, "*") {
				t.Fatalf("parameter %q a plain reader sees is hidden: %q", kv.name, params)
			}
		}
		if value != strings.ToLower(value) || strings.Contains(value, ";") || !utf8.ValidString(value) {
			t.Fatalf("value %q: not lower-case, holds a parameter, or not UTF-8", value)
		}
		total := len(value)
		for name, v := range params {
			if name != strings.ToLower(name) || !utf8.ValidString(name) || !utf8.ValidString(v) {
				t.Fatalf("parameter %q=%q: name not lower-case, or not UTF-8", name, v)
			}
			total += len(name) + len(v)
		}
		if total > 2*maxGrowth*len(s) {
			t.Fatalf("%d bytes of value and parameters out of %d", total, len(s))
		}
		var p paramScanner
		p.split(s)
		if p.scanned > 4*len(s) {
			t.Fatalf("quoted values of %d bytes took %d bytes of reading", len(s), p.scanned)
		}
	})
}
