package mime

import (
	"fmt"
	"strings"
	"testing"
)

// manyNames is a part whose Content-Disposition gives filename= n times,
// each value holding a NUL when nul is set.
func manyNames(n int, nul bool) string {
	var b strings.Builder
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment")
	for i := range n {
		if nul {
			fmt.Fprintf(&b, "; filename=\"a%d\x00b.txt\"", i)
		} else {
			fmt.Fprintf(&b, "; filename=\"a%d.txt\"", i)
		}
	}
	b.WriteString("\r\n\r\nhello\r\n")
	return b.String()
}

// TestManyNames: a filename given thousands of times keeps every value,
// and every NUL-cut start, once each.
func TestManyNames(t *testing.T) {
	const n = 2000
	m := ParseBytes([]byte(manyNames(n, true)), Limits{})
	names := m.Parts[0].Names()
	seen := map[string]int{}
	for _, nm := range names {
		seen[nm]++
	}
	for i := range n {
		for _, want := range []string{fmt.Sprintf("a%d\x00b.txt", i), fmt.Sprintf("a%d", i)} {
			if seen[want] != 1 {
				t.Fatalf("name %q given %d times, want once (of %d names)", want, seen[want], len(names))
			}
		}
	}
	if len(names) != 2*n {
		t.Errorf("%d names, want %d", len(names), 2*n)
	}
}

// BenchmarkManyNULNames: parsing a part that gives filename= N times, each
// holding a NUL, costs time linear in N (the name set). It was quadratic:
// 12,000 such names took 30 s.
func BenchmarkManyNULNames(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		msg := []byte(manyNames(n, true))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				ParseBytes(msg, Limits{})
			}
		})
	}
}
