package queue

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkOpen rebuilds the index of a 2000-message queue (what a
// restart, and a rescan after a CLI change, costs) beside the floor for
// that work in the same run: list the directory and read each file's
// trailer with plain open/pread/close.
func BenchmarkOpen(b *testing.B) {
	const n = 2000
	dir := b.TempDir()
	d, err := Open(dir, Options{NoSync: true, Poll: -1})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		commit(b, d, testEnv("a@example.test"), "Received: x\r\n", "Subject: x\r\n\r\nbody\r\n")
	}
	d.Close()
	b.Run("queue", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			d, err := Open(dir, Options{Poll: -1})
			if err != nil {
				b.Fatal(err)
			}
			if d.Len() != n {
				b.Fatalf("index holds %d of %d", d.Len(), n)
			}
			d.Close()
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("readdir+pread", func(b *testing.B) {
		buf := make([]byte, trailerLen)
		for i := 0; i < b.N; i++ {
			names, err := d.names()
			if err != nil {
				b.Fatal(err)
			}
			for _, name := range names {
				f, err := os.Open(filepath.Join(dir, name))
				if err != nil {
					b.Fatal(err)
				}
				st, _ := f.Stat()
				if st.Size() >= trailerLen {
					f.ReadAt(buf, st.Size()-trailerLen)
				}
				f.Close()
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "msgs/s")
	})
}
