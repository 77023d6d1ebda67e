package main

import (
	"io"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/queue"
)

// TestCrashDurability loads the gateway from several goroutines, SIGKILLs
// it at random moments and restarts it. Every message that got a 250 must
// then be in the queue, intact (the SHA-256 in its header matches its
// body), and no message in the queue may be partial.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary; not in -short")
	}
	const messages, workers, kills = 240, 8, 4
	path, dir := writeRunConfig(t)
	g := startGateway(t, path)

	var mu sync.Mutex
	addr := g.addr
	acked := map[string]int{} // queue ID -> message number
	failures := 0
	next := 0
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= messages {
					mu.Unlock()
					return
				}
				i, a := next, addr
				next++
				mu.Unlock()
				for {
					id, err := sendAcked(a, i)
					mu.Lock()
					if err == nil {
						acked[id] = i
						mu.Unlock()
						break
					}
					// Like a real client: retry later, at the current address.
					failures++
					a = addr
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for k := 0; k < kills; k++ {
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		_ = g.cmd.Process.Signal(syscall.SIGKILL)
		_ = g.wait(t)
		g = startGateway(t, path)
		mu.Lock()
		addr = g.addr
		mu.Unlock()
	}
	wg.Wait()
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	if err := g.wait(t); err != nil {
		t.Fatalf("exit: %v", err)
	}

	q, err := queue.Open(filepath.Join(dir, "spool"), queue.Options{Poll: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	envs, err := q.List()
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, env := range envs {
		stored[env.ID] = true
		rc, err := q.Open(env.ID)
		if err != nil {
			t.Fatalf("open %s: %v", env.ID, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !intact(b) {
			t.Errorf("message %s in the queue is not intact (%v)", env.ID, err)
		}
	}
	lost := 0
	for id, i := range acked {
		if !stored[id] {
			lost++
			t.Errorf("message %d got 250 with id %s but is not in the queue", i, id)
		}
	}
	t.Logf("%d messages, %d kills: %d acknowledged, %d in the queue (%d unacknowledged duplicates of retried sends), %d lost, %d failed attempts retried",
		messages, kills, len(acked), len(envs), len(envs)-len(acked)+lost, lost, failures)
	if len(acked) != messages {
		t.Fatalf("only %d of %d messages acknowledged", len(acked), messages)
	}
}
