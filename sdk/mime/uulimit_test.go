package mime

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestEncodedFilesPastPartsLimit: files uuencoded or yEnc-encoded in a
// text part count as parts, and those past Limits.MaxParts are left out
// with FindPartsLimit, as MIME parts are: a stage must learn that a file
// after the first few hundred harmless ones went unread.
func TestEncodedFilesPastPartsLimit(t *testing.T) {
	files := func(n int, enc func(name, data string) string) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(enc(fmt.Sprintf("a%d.txt", i), "abc"))
		}
		return b.String()
	}
	yenc := func(name, data string) string {
		return yencode(fmt.Sprintf("line=128 size=%d name=%s", len(data), name), data)
	}
	lim := Limits{MaxParts: 10}
	tests := []struct {
		name    string
		text    string
		files   int
		finding bool
	}{
		{"uuencode within", files(9, uuencode), 9, false},
		{"uuencode past", files(9, uuencode) + uuencode("payload.exe", "MZ"), 9, true},
		{"uuencode far past", files(40, uuencode), 9, true},
		{"yEnc past", files(9, yenc) + yenc("payload.exe", "MZ"), 9, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := ParseBytes([]byte("Subject: uu\r\n\r\nsee below\r\n"+tc.text), lim)
			var got []string
			for _, p := range m.Parts {
				if p.Filename != "" {
					got = append(got, p.Filename)
				}
			}
			if len(got) != tc.files {
				t.Errorf("%d files %q, want %d", len(got), got, tc.files)
			}
			if has := slices.Contains(m.Findings, FindPartsLimit); has != tc.finding {
				t.Errorf("findings %v: %s present %v, want %v", m.Findings, FindPartsLimit, has, tc.finding)
			}
		})
	}
}
