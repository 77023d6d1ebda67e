package mime

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The walk must cost in proportion to the message: a stranger who can make
// one message take minutes makes every content stage time out, and a stage
// whose on_error is continue then lets the message through unscanned. These
// tests bound the bytes a walk allocates, which grows with the work done and,
// unlike a wall-clock limit, does not depend on the machine or its load.

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// jisShape is a Content-Type of quoted parameters with raw ISO-2022-JP in
// them as a hostile sender shapes it, and what ends the field.
type jisShape struct{ name, param, tail string }

func (j jisShape) header(n int) string {
	return "Content-Type: text/plain" + strings.Repeat(j.param, n) + j.tail + "\r\n\r\nbody\r\n"
}

// jisShapes are the parameters that made a quoted value's ISO-2022-JP
// reading run to the end of the header for each of them: quadratic CPU and
// memory (20,000 of the first, a 180 KB header, took 24.5 s).
var jisShapes = []jisShape{
	// a double-byte run that is never left: every reading ran off the end
	{"unterminated", "; a=\"\x1b$B\"", ""},
	{"unterminated without spaces", ";a=\"\x1b$B\"", ""},
	{"unterminated, switching sets", "; a=\"\x1b$B\"; b=\"\x1b(I\"", ""},
	// a reading that closes only at the field's end, and holds a byte
	// that is not UTF-8, so that a Shift_JIS reading was tried after it
	{"closing at the end, with an 8-bit byte", "; a=\"\x81\x1b$B\"", "\x1b(B\""},
	// every reading closing in the next value, hiding a parameter from
	// it that the plain reading of the field then finds (see mediaParams)
	{"closing at the next parameter", "; a=\"\x1b$B\"; b=\"\x1b(B\"", ""},
}

func TestQuotedJISParamsLinear(t *testing.T) {
	const n = 5_000
	for _, tc := range jisShapes {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.header(n))
			var m *Message
			got := allocated(func() { m = ParseBytes(raw, DefaultLimits()) })
			if len(m.Parts) != 1 || m.Parts[0].Text != "body\r\n" {
				t.Fatalf("parts %d, want the one text part", len(m.Parts))
			}
			// The header is walked a handful of times (unfolded, decoded
			// for Message.Header, split into parameters, each value
			// decoded): some tens of times its size. The quadratic walk
			// allocated 0.4-2 GB here, ten thousand times the header.
			if limit := uint64(100 * len(raw)); got > limit {
				t.Errorf("%d parameters (%d bytes) allocated %d bytes, over %d: not linear", n, len(raw), got, limit)
			}
			var p paramScanner
			p.split(string(raw[len("Content-Type: text/plain"):]))
			if limit := 4 * len(raw); p.scanned > limit { // see paramScanner.quoted
				t.Errorf("%d parameters (%d bytes): %d bytes scanned, over %d", n, len(raw), p.scanned, limit)
			}
		})
	}
}

// BenchmarkQuotedJISParams shows the cost per parameter staying flat as
// their number grows tenfold. Before the fix the unterminated shapes took
// 0.05-0.2 s for n=1,000 and 5.5 s (24 s switching sets) for n=10,000;
// now 1-2.5 ms and 11-32 ms, on the same shared two-core machine.
func BenchmarkQuotedJISParams(b *testing.B) {
	for _, tc := range jisShapes {
		for _, n := range []int{1_000, 10_000} {
			raw := []byte(tc.header(n))
			b.Run(fmt.Sprintf("%s/n=%d", tc.name, n), func(b *testing.B) {
				b.SetBytes(int64(len(raw)))
				for range b.N {
					if m := ParseBytes(raw, DefaultLimits()); len(m.Parts) != 1 {
						b.Fatal("no part")
					}
				}
			})
		}
	}
}

// TestDelimiterFloodBounded: a multipart body made of nothing but delimiter
// lines is cut into no more children than the parts limit lets the walk
// visit. Every one of them was kept first: 25 MB of "--q\r\n" allocated
// 733 MB before the limit was checked.
func TestDelimiterFloodBounded(t *testing.T) {
	for _, delim := range []string{"--q\r\n", "--q\n", "\r\n--q \r\n"} {
		t.Run(fmt.Sprintf("%q", delim), func(t *testing.T) {
			var b strings.Builder
			b.WriteString("Content-Type: multipart/mixed; boundary=q\r\n\r\n")
			for b.Len() < 4<<20 {
				b.WriteString(delim)
			}
			raw := []byte(b.String())
			var m *Message
			got := allocated(func() { m = ParseBytes(raw, DefaultLimits()) })
			if !slices.Equal(m.Findings, []string{FindBoundaryBroken, FindPartsLimit}) || len(m.Parts) != 499 {
				t.Errorf("findings %v, %d parts; want %s and %s, 499 parts", m.Findings, len(m.Parts), FindBoundaryBroken, FindPartsLimit)
			}
			if limit := uint64(len(raw) / 4); got > limit {
				t.Errorf("%d bytes of delimiters allocated %d bytes, over %d", len(raw), got, limit)
			}
		})
	}
	// The limit still counts the parts of the whole message: a second
	// multipart after a first one that used most of them.
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n")
	b.WriteString(strings.Repeat("--a\r\n\r\nx\r\n", 7) + "--a--\r\n--o\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n")
	b.WriteString(strings.Repeat("--b\r\n\r\ny\r\n", 7) + "--b--\r\n--o--\r\n")
	m := ParseBytes([]byte(b.String()), Limits{MaxParts: 12})
	if !slices.Equal(m.Findings, []string{FindPartsLimit}) || len(m.Parts) != 9 {
		t.Errorf("findings %v, %d parts; want %s, 9 parts", m.Findings, len(m.Parts), FindPartsLimit)
	}
}

// TestBoundaryFloodLinear: a Content-Type that gives thousands of
// boundaries, each delimiting the body, costs a pass over the body to find
// which ones do, and maxExtraReadings walks of it, not one per boundary.
func TestBoundaryFloodLinear(t *testing.T) {
	const n = 20_000
	var h, body strings.Builder
	h.WriteString("Content-Type: multipart/mixed")
	for i := range n {
		fmt.Fprintf(&h, "; boundary=b%d", i)
		fmt.Fprintf(&body, "--b%d\r\n\r\nx\r\n", i)
	}
	raw := []byte(h.String() + "\r\n\r\n" + body.String())
	var m *Message
	got := allocated(func() { m = ParseBytes(raw, DefaultLimits()) })
	if !slices.Contains(m.Findings, FindPartsLimit) || len(m.Parts) != 1+maxExtraReadings {
		t.Errorf("findings %v, %d parts; want %s and %d parts", m.Findings, len(m.Parts), FindPartsLimit, 1+maxExtraReadings)
	}
	if limit := uint64(100 * len(raw)); got > limit {
		t.Errorf("%d boundaries (%d bytes) allocated %d bytes, over %d: not linear", n, len(raw), got, limit)
	}
}
