package execfilter

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk/mime"
)

// peakHeap samples live heap bytes every 200 us while f runs and returns
// the highest value above the level before it.
func peakHeap(f func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if v := read(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	f()
	close(done)
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// mixedZip is ~size bytes of compressible text and incompressible data.
func mixedZip(b testing.TB, size int) []byte {
	r := rand.New(rand.NewPCG(7, 8))
	var files []zfile
	for i := 0; i*256<<10 < size; i++ {
		data := make([]byte, 256<<10)
		if i%2 == 0 {
			for j := range data {
				data[j] = byte(r.Uint32())
			}
		} else {
			copy(data, strings.Repeat(fmt.Sprintf("line %d of a report\n", i), 1<<14))
		}
		files = append(files, zfile{name: fmt.Sprintf("f%d.dat", i), data: data})
	}
	return makeZip(b, files...)
}

// BenchmarkInspectZip is archive inspection throughput (decompressed MB/s).
func BenchmarkInspectZip(b *testing.B) {
	data := mixedZip(b, 8<<20)
	cfg, _ := parseConfig(nil)
	b.SetBytes(8 << 20)
	for b.Loop() {
		in := newInspector(cfg)
		in.attachment(context.Background(), "a.zip", "application/zip", data)
	}
}

// BenchmarkBaselineUnzip is archive/zip decompressing the same archive to
// io.Discard: the floor the inspection is measured against.
func BenchmarkBaselineUnzip(b *testing.B) {
	data := mixedZip(b, 8<<20)
	b.SetBytes(8 << 20)
	for b.Loop() {
		zr, _ := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		for _, f := range zr.File {
			rc, _ := f.Open()
			io.Copy(io.Discard, rc)
			rc.Close()
		}
	}
}

// BenchmarkBomb reports time per bomb (ns/op) and the peak live heap while
// one is inspected (peak-MiB); the target is under 1 s and 64 MiB.
func BenchmarkBomb(b *testing.B) {
	bombs := map[string][]byte{
		"42zip-bottom-16x1GiB": bombZip(b, 16, 1<<30),
		"overlap-1000":         overlapZip(b, 1000, 64<<20),
		"gzip-1GiB":            append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}, append(zeroDeflate(1<<30), make([]byte, 8)...)...),
		"nested-42zip-upper":   makeZip(b, zfile{name: "0.zip", data: bombZip(b, 16, 64<<20), store: true}, zfile{name: "1.zip", data: bombZip(b, 16, 64<<20), store: true}),
	}
	cfg, _ := parseConfig(nil)
	for name, data := range bombs {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs() // B/op: every byte allocated, an upper bound of the peak
			var peak uint64
			for b.Loop() {
				p := peakHeap(func() {
					in := newInspector(cfg)
					in.attachment(context.Background(), "bomb.zip", "application/zip", data)
					if !in.tags[TagLimit] && !in.tags[TagNested] {
						b.Fatalf("bomb not stopped: %v", in.tags)
					}
				})
				peak = max(peak, p)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
		})
	}
}

// BenchmarkStage100KB is the EXEC stage on a 100 KB message with a ZIP
// attachment, against mime.Parse of the same message (the share every
// content stage pays) in the same run.
func BenchmarkStage100KB(b *testing.B) {
	msg := message100KB(b)
	raw := msg.Bytes()
	b.Run("execfilter", func(b *testing.B) {
		st := newStage(b, nil)
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			run(b, st, msg)
		}
	})
	b.Run("baseline-mime.Parse", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			mime.Parse(bytes.NewReader(raw), mime.DefaultLimits())
		}
	})
}
