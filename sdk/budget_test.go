package sdk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk/internal/pb"
)

// useBudget sets a message budget of n bytes for one test.
func useBudget(t *testing.T, n int64) *budget {
	SetMessageBudget(n)
	t.Cleanup(func() { SetMessageBudget(0) })
	return msgBudget.Load()
}

// waitQueued returns once a call waits for b. A request of one byte
// passes while nobody waits and bytes are free; once a call waits, it does
// not, free bytes or not: the budget serves its waiters in order. The
// other goroutines get a million turns to get there.
func waitQueued(t *testing.T, b *budget) {
	t.Helper()
	for range 1_000_000 {
		if !b.sem.TryAcquire(1) {
			return
		}
		b.sem.Release(1)
		runtime.Gosched()
	}
	t.Fatal("no call waits for the budget")
}

// readStage reads its message whole, reports the read on got (named by
// the call's session), then returns once its session's channel in wait
// is closed (at once for a session not in wait).
type readStage struct {
	got  chan readDone
	wait map[string]chan struct{}
	keep func(*Message) // sees the message the call had
}

type readDone struct {
	session string
	err     error
}

func (readStage) Info() Info                                           { return Info{Name: "read", Phases: []Phase{PhaseData}} }
func (readStage) Configure(context.Context, Env, map[string]any) error { return nil }
func (s readStage) Check(ctx context.Context, req *Request) (*Result, error) {
	_, err := req.Message.ReadAll(ctx, 0)
	s.got <- readDone{req.SessionID, err}
	if s.keep != nil {
		s.keep(req.Message)
	}
	if err != nil {
		return nil, err
	}
	if w := s.wait[req.SessionID]; w != nil {
		<-w
	}
	return &Result{Verdict: VerdictPass}, nil
}

// budgetServer serves st with a spool file of size bytes, and returns a
// function making a data-phase call, named session, on the first n bytes.
func budgetServer(t *testing.T, st Stage, size int) func(ctx context.Context, session string, n int64) error {
	path := filepath.Join(t.TempDir(), "spool")
	if err := os.WriteFile(path, []byte(strings.Repeat("x", size)), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := &stageServer{stage: st}
	return func(ctx context.Context, session string, n int64) error {
		_, err := srv.Check(ctx, &pb.CheckRequest{Phase: string(PhaseData), SessionId: session,
			Message: &pb.Message{Path: path, Size: n}})
		return err
	}
}

// TestMessageBudgetWaitsInLine: a read that does not fit the budget waits
// for the calls holding it, in order, until its context ends; the share of
// each call is given back when Check returns, without the stage doing
// anything.
func TestMessageBudgetWaitsInLine(t *testing.T) {
	b := useBudget(t, 100)
	st := readStage{got: make(chan readDone, 3), wait: map[string]chan struct{}{"a": make(chan struct{})}}
	call := budgetServer(t, st, 100)
	done := make(chan error, 3)

	go func() { done <- call(context.Background(), "a", 80) }()
	if r := <-st.got; r.err != nil {
		t.Fatalf("first read: %v", r.err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- call(ctx, "b", 80) }()
	waitQueued(t, b) // b waits for a; a smaller read would wait behind it
	go func() { done <- call(context.Background(), "c", 10) }()
	cancel()
	// The 20 bytes a leaves are enough for c once b gave up its place.
	reads := map[string]error{}
	for range 2 {
		r := <-st.got
		reads[r.session] = r.err
	}
	if err := reads["b"]; !errors.Is(err, context.Canceled) {
		t.Errorf("read b: %v, want its context's error", err)
	}
	if err, ok := reads["c"]; !ok || err != nil {
		t.Errorf("read c: %v (done: %v), want it read", err, ok)
	}
	var failed []error
	for range 2 {
		if err := <-done; err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0].Error(), "waiting for 80 bytes of the message budget") {
		t.Errorf("calls b and c failed with %v, want b's wait for the budget", failed)
	}
	close(st.wait["a"])
	if err := <-done; err != nil {
		t.Fatalf("call a: %v", err)
	}
	if !b.sem.TryAcquire(100) {
		t.Fatal("the calls returned, but the budget is still held")
	}
}

// TestMessageBudgetLargeMessage: a message larger than the budget takes
// all of it rather than waiting for ever, and a read after the call
// returned (a goroutine the stage left behind) takes nothing.
func TestMessageBudgetLargeMessage(t *testing.T) {
	b := useBudget(t, 100)
	var kept *Message
	st := readStage{got: make(chan readDone, 1), keep: func(m *Message) {
		kept = m
		if b.sem.TryAcquire(1) {
			b.sem.Release(1)
			t.Error("a message over the budget did not take all of it")
		}
	}}
	call := budgetServer(t, st, 150)
	if err := call(context.Background(), "big", 150); err != nil {
		t.Fatal(err)
	}
	if r := <-st.got; r.err != nil {
		t.Fatal(r.err)
	}
	if _, err := kept.ReadAll(context.Background(), 0); !errors.Is(err, errCallOver) {
		t.Errorf("read after the call: %v, want %v", err, errCallOver)
	}
	if !b.sem.TryAcquire(100) {
		t.Fatal("the call returned, but the budget is still held")
	}
}
