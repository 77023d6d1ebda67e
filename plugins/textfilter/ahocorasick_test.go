package textfilter

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// naive finds (end offset, id) of every occurrence the slow way.
func naive(pats []string, text string) [][2]int {
	var out [][2]int
	for end := 1; end <= len(text); end++ {
		for id, p := range pats {
			if p != "" && strings.HasSuffix(text[:end], p) {
				out = append(out, [2]int{end, id})
			}
		}
	}
	return out
}

func acAll(m *matcher, text string) [][2]int {
	var out [][2]int
	n := int32(0)
	for i := 0; i < len(text); i++ {
		n = m.step(n, text[i])
		for o := n; o > 0; o = m.more[o] {
			for _, id := range m.patterns(o) {
				out = append(out, [2]int{i + 1, int(id)})
			}
		}
	}
	return out
}

func sortHits(h [][2]int) {
	slices.SortFunc(h, func(a, b [2]int) int {
		if a[0] != b[0] {
			return a[0] - b[0]
		}
		return a[1] - b[1]
	})
}

// sameAsNaive fails the test unless the automaton of pats finds in text
// exactly what the naive search finds.
func sameAsNaive(t *testing.T, pats []string, text string) {
	t.Helper()
	got, want := acAll(newMatcher(pats), text), naive(pats, text)
	sortHits(got)
	sortHits(want)
	if !slices.Equal(got, want) {
		t.Fatalf("patterns %q text %q: got %v, want %v", pats, text, got, want)
	}
}

func TestMatcher(t *testing.T) {
	tests := []struct {
		name string
		pats []string
		text string
	}{
		{"classic", []string{"he", "she", "his", "hers"}, "ushers"},
		{"overlap", []string{"a", "aa", "aaa"}, "aaaa"},
		{"japanese", []string{"未承諾", "承諾広告", "広告"}, "【未承諾広告】"},
		{"none", []string{"xyz"}, "abc"},
		{"empty pattern", []string{"", "b"}, "abc"},
		{"duplicate", []string{"ab", "ab"}, "abab"},
		// More than 8 edges at a node: edge() searches them by halving.
		{"wide node", strings.Fields("ka kb kc kd ke kf kg kh ki kj kk kl km kn ko kp kq kr ks kt ku kv kw kx ky kz"), "xkukzkakm"},
		{"wide node, katakana", strings.Fields("カード キャンペーン クーポン ケース コイン サービス シェア スマホ セール ソフト"), "【セール】コイン"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sameAsNaive(t, tc.pats, tc.text)
		})
	}
}

// TestMatcherRandom compares with the naive search on random alphabets:
// small ones, where fail links are exercised hardest, and wide ones, whose
// nodes have more than 8 edges (edge() halves those: a halving that
// dropped the middle edge went unseen while this test used "abc" only).
func TestMatcherRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, alphabet := range []string{"abc", "abcdefghijklmnopqrstuvwxyz", "\x00\x01\x7f\x80\xe3\xff0123456789"} {
		word := func(n int) string {
			b := make([]byte, 1+r.IntN(n))
			for i := range b {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
			return string(b)
		}
		for round := 0; round < 300; round++ {
			pats := make([]string, 1+r.IntN(300)) // many short words: wide nodes below the root
			for i := range pats {
				pats[i] = word(4)
			}
			text := word(200)
			sameAsNaive(t, pats, text)
		}
	}
}

// FuzzMatcher: the automaton finds exactly what the naive search finds,
// for patterns split from the first input at newlines.
func FuzzMatcher(f *testing.F) {
	f.Add("he\nshe\nhis\nhers", "ushers")
	f.Add("casino\ncheap\ncialis\nclick\ncredit\ncrypto\ncure\ncyber\ncoin\ncbd", "click here")
	f.Add("未承諾\n承諾広告\n広告", "【未承諾広告】")
	f.Fuzz(func(t *testing.T, list, text string) {
		pats := strings.Split(list, "\n")
		if len(pats) > 64 || len(text) > 4096 {
			return
		}
		sameAsNaive(t, pats, text)
	})
}

// TestMatcherBuildMemory: building the automaton allocates a small, fixed
// number of bytes a node. A map per node cost about 350, so a list of a
// million words took the plugin to 1.6 GB while it loaded.
func TestMatcherBuildMemory(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 3))
	pats := make([]string, 100000)
	for i := range pats {
		b := make([]byte, 6+r.IntN(9))
		for j := range b {
			b[j] = 'a' + byte(r.IntN(26))
		}
		pats[i] = string(b)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m := newMatcher(pats)
	runtime.ReadMemStats(&after)
	nodes := uint64(len(m.fail))
	if perNode := (after.TotalAlloc - before.TotalAlloc) / nodes; perNode > 100 {
		t.Errorf("building %d nodes allocated %d bytes a node, want at most 100", nodes, perNode)
	}
	for _, p := range pats[:100] { // still finds them
		if hits := acAll(m, p); !slices.ContainsFunc(hits, func(h [2]int) bool { return pats[h[1]] == p && h[0] == len(p) }) {
			t.Fatalf("%q not found in itself: %v", p, hits)
		}
	}
}
