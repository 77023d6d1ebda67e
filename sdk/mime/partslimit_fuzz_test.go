package mime

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzPartsLimit: a message walked within a parts limit that leaves out
// parts a walk without it finds says so (FindPartsLimit), whichever way
// the parts came (multipart children, uuencoded or yEnc files in text):
// a file past the limit is never unread silently.
func FuzzPartsLimit(f *testing.F) {
	f.Add([]byte(manyParts(5)), uint8(2))
	f.Add(append(append(append([]byte("Subject: u\r\n\r\ntext\r\n"), uuEncode("a.txt", []byte("one"))...), uuEncode("b.exe", []byte("MZ"))...),
		yEncode("c.exe", []byte("MZ\x00"))...), uint8(2))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nbegin 644 a\r\n#86)C\r\n`\r\nend\r\n--x\r\n\r\nt\r\n--x--\r\n"), uint8(1))
	f.Fuzz(func(t *testing.T, raw []byte, max uint8) {
		big := Limits{MaxParts: 1000, MaxDepth: 8, MaxPartBytes: 1 << 16, MaxTotalBytes: 1 << 20}
		lim := big
		lim.MaxParts = 1 + int(max%8)
		all := ParseBytes(bytes.Clone(raw), big)
		if len(all.Parts) >= big.MaxParts || slices.Contains(all.Findings, FindPartsLimit) {
			return
		}
		m := ParseBytes(bytes.Clone(raw), lim)
		if len(all.Parts) > lim.MaxParts && !slices.Contains(m.Findings, FindPartsLimit) {
			t.Fatalf("%d parts within %d, %d without the limit, and no %s: %v", len(m.Parts), lim.MaxParts, len(all.Parts), FindPartsLimit, m.Findings)
		}
	})
}
