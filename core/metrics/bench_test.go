package metrics

import (
	"sync/atomic"
	"testing"
	"time"
)

// The hot-path calls against a baseline measured in the same run: a bare
// atomic add (the floor of any counter) and a nil set (metrics off).
// Compare ns/op as ratios; allocs/op must be 0.

func BenchmarkBaselineAtomicAdd(b *testing.B) {
	var n atomic.Uint64
	b.ReportAllocs()
	for b.Loop() {
		n.Add(1)
	}
}

func BenchmarkOff(b *testing.B) {
	var m *Metrics
	b.ReportAllocs()
	for b.Loop() {
		m.Connection("smtp")
		m.Refused("rcpt", 550)
		m.StageCall("dnsbl", "pass", time.Millisecond)
	}
}

func BenchmarkConnection(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.Connection("smtp")
	}
}

func BenchmarkRefused(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.Refused("rcpt", 550)
	}
}

func BenchmarkStageCall(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.StageCall("dnsbl", "pass", time.Millisecond)
	}
}

func BenchmarkStageCallParallel(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.StageCall("dnsbl", "pass", time.Millisecond)
		}
	})
}
