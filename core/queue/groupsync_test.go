package queue

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// Every caller must see an fsync that began after it called, and callers
// that wait together share fsyncs.
func TestGroupSync(t *testing.T) {
	const n = 64
	var calls, arrived atomic.Int64
	var mu sync.Mutex
	covered := int64(0) // callers arrived before the latest finished fsync began
	gate := make(chan struct{})
	var once sync.Once
	g := newGroupSync(func() error {
		began := arrived.Load()
		if calls.Add(1) == 1 {
			<-gate // hold the first fsync until every caller is in
		}
		mu.Lock()
		covered = max(covered, began)
		mu.Unlock()
		return nil
	})
	var wg sync.WaitGroup
	var early atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := arrived.Add(1)
			if mine == n {
				once.Do(func() { close(gate) })
			}
			if err := g.Sync(); err != nil {
				t.Error(err)
			}
			mu.Lock()
			if covered < mine {
				early.Add(1)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if early.Load() != 0 {
		t.Fatalf("%d callers returned before an fsync that began after them", early.Load())
	}
	if c := calls.Load(); c >= n {
		t.Fatalf("%d fsyncs for %d callers: none shared", c, n)
	} else {
		t.Logf("%d callers, %d fsyncs", n, c)
	}
}

func TestGroupSyncError(t *testing.T) {
	boom := errors.New("boom")
	fail := true
	g := newGroupSync(func() error {
		if fail {
			return boom
		}
		return nil
	})
	if err := g.Sync(); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the fsync's error", err)
	}
	fail = false
	if err := g.Sync(); err != nil {
		t.Fatalf("a later successful fsync still reports %v", err)
	}
}
