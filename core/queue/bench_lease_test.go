package queue

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkLeaseUpdate is one delivery attempt's bookkeeping: Lease the
// message due soonest, record an attempt (Update keeps it queued), in a
// queue of 500. Beside it, in the same run: the same with NoSync, and the
// bare file operations Update rests on (write an envelope-sized file,
// fsync, rename, fsync the directory), so the ratio shows what locking,
// reading and scheduling add.
func BenchmarkLeaseUpdate(b *testing.B) {
	for _, kind := range []string{"queue", "queue-nosync", "replace+fsync"} {
		b.Run(kind, func(b *testing.B) {
			f := leaseUpdateFunc(b, kind)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := f(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}

func leaseUpdateFunc(b *testing.B, kind string) func() error {
	dir := b.TempDir()
	env := testEnv("a@example.test", "b@example.test")
	if kind == "replace+fsync" {
		js, _ := json.Marshal(env)
		df, err := os.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { df.Close() })
		p := filepath.Join(dir, "env")
		return func() error {
			f, err := os.Create(p + ".tmp")
			if err != nil {
				return err
			}
			f.Write(js)
			if err := f.Sync(); err != nil {
				return err
			}
			f.Close()
			if err := os.Rename(p+".tmp", p); err != nil {
				return err
			}
			return df.Sync()
		}
	}
	d, err := Open(dir, Options{NoSync: kind == "queue-nosync", Poll: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	for i := 0; i < 500; i++ {
		commit(b, d, testEnv("a@example.test", "b@example.test"), "", "Subject: x\r\n\r\nbody\r\n")
	}
	return func() error {
		now := time.Now()
		l, err := d.Lease(now)
		if err != nil {
			return err
		}
		e := l.Envelope()
		e.Attempts++
		e.NextAttempt = now
		return l.Update(e)
	}
}
