package textfilter

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// benchText is ~1 MiB of mixed Japanese and English normalised text.
func benchText() string {
	var b strings.Builder
	r := rand.New(rand.NewPCG(3, 4))
	words := []string{"会議", "の", "議事録", "です", "meeting", "notes", "tomorrow", "確認", "お願い", "します", "report", "資料"}
	for b.Len() < 1<<20 {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	return normalize(b.String())
}

func benchPatterns(n int) []string {
	r := rand.New(rand.NewPCG(5, 6))
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("spam%dword%x", i, r.Uint32())
	}
	out[0] = "議事録" // one that hits
	return out
}

// BenchmarkMatch10k is the matcher with 10,000 literal patterns.
func BenchmarkMatch10k(b *testing.B) {
	text, m := benchText(), newMatcher(benchPatterns(10000))
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		hits := 0
		m.scan(text, func(int32) { hits++ })
	}
}

// BenchmarkBaselineContains1 is one strings.Contains pass (SIMD-assisted)
// over the same text: the floor a single literal costs.
func BenchmarkBaselineContains1(b *testing.B) {
	text := benchText()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		_ = strings.Count(text, "spam1word")
	}
}

// BenchmarkBaselineLoop100 is what a loop over patterns costs with only 100
// of them (10,000 would be 100 times slower still).
func BenchmarkBaselineLoop100(b *testing.B) {
	text, pats := benchText(), benchPatterns(100)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		for _, p := range pats {
			_ = strings.Contains(text, p)
		}
	}
}

// BenchmarkBaselineRegexAlt100 is 100 literals as one regexp alternation.
func BenchmarkBaselineRegexAlt100(b *testing.B) {
	text, pats := benchText(), benchPatterns(100)
	re := regexp.MustCompile(strings.Join(pats, "|"))
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		_ = re.FindAllStringIndex(text, -1)
	}
}

// BenchmarkNormalize is the NFKC + fold pass every text goes through.
func BenchmarkNormalize(b *testing.B) {
	text := benchText()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		_ = normalize(text)
	}
}
