package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCommit measures a durable Commit beside two baselines in the
// same run: the same Commit with NoSync (what the fsyncs cost), and a plain
// os.WriteFile-style write plus fsync of the same bytes, one file per
// message (the floor for "on disk before 250"). Compare msgs/s within one
// run; absolute numbers depend on the disk.
func BenchmarkCommit(b *testing.B) {
	for _, size := range []int{5 << 10, 100 << 10} {
		body := make([]byte, size)
		for i := range body {
			body[i] = "abcdefghijklmnopqrstuvwxyz\r\n"[i%28]
		}
		for _, par := range []int{1, 20} {
			for _, kind := range []string{"queue", "queue-nosync", "writefile+fsync"} {
				name := fmt.Sprintf("%dKB/par%d/%s", size>>10, par, kind)
				b.Run(name, func(b *testing.B) {
					b.SetBytes(int64(size))
					run(b, par, commitFunc(b, kind, body))
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
				})
			}
		}
	}
}

// run calls f b.N times, from par goroutines at once when par > 1.
func run(b *testing.B, par int, f func() error) {
	b.ResetTimer()
	if par == 1 {
		for i := 0; i < b.N; i++ {
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism((par + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := f(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func commitFunc(b *testing.B, kind string, body []byte) func() error {
	dir := b.TempDir()
	if kind == "writefile+fsync" {
		var n atomic.Int64
		return func() error {
			f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(n.Add(1))), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			if _, err := f.Write(body); err != nil {
				return err
			}
			if err := f.Sync(); err != nil {
				return err
			}
			return f.Close()
		}
	}
	d, err := Open(dir, Options{NoSync: kind == "queue-nosync", Poll: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return func() error {
		dr, err := d.NewDraft()
		if err != nil {
			return err
		}
		if _, err := dr.Write(body); err != nil {
			return err
		}
		return dr.Commit(testEnv("a@example.test", "b@example.test"), []byte("Received: from x\r\n"))
	}
}

// BenchmarkCommitInterleaved runs the three writers of BenchmarkCommit in
// alternating batches within each iteration, so that all three see the
// same machine load (this box is shared), and reports each one's msgs/s
// and the ratios of the durable Commit to the two baselines.
func BenchmarkCommitInterleaved(b *testing.B) {
	kinds := []string{"queue", "queue-nosync", "writefile+fsync"}
	for _, size := range []int{5 << 10, 100 << 10} {
		body := make([]byte, size)
		for _, par := range []int{1, 20} {
			b.Run(fmt.Sprintf("%dKB/par%d", size>>10, par), func(b *testing.B) {
				fns := make([]func() error, len(kinds))
				for i, k := range kinds {
					fns[i] = commitFunc(b, k, body)
				}
				batch := max(10, 2*par)
				spent := make([]time.Duration, len(kinds))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for k, f := range fns {
						start := time.Now()
						if err := runBatch(f, par, batch); err != nil {
							b.Fatal(err)
						}
						spent[k] += time.Since(start)
					}
				}
				rate := func(k int) float64 { return float64(b.N*batch) / spent[k].Seconds() }
				b.ReportMetric(rate(0), "queue-msgs/s")
				b.ReportMetric(rate(1), "nosync-msgs/s")
				b.ReportMetric(rate(2), "writefile-msgs/s")
				b.ReportMetric(rate(0)/rate(2), "queue/writefile")
				b.ReportMetric(rate(0)/rate(1), "queue/nosync")
			})
		}
	}
}

// runBatch calls f n times from par goroutines.
func runBatch(f func() error, par, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, par)
	per := n / par
	for g := 0; g < par; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if err := f(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
