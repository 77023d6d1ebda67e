package sdk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

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

// peekStage reads the first 10 bytes of its message (ReadAll with a
// limit), waits for goOn, then reads the whole message.
type peekStage struct {
	peeked chan struct{}
	goOn   chan struct{}
}

func (peekStage) Info() Info                                           { return Info{Name: "peek", Phases: []Phase{PhaseData}} }
func (peekStage) Configure(context.Context, Env, map[string]any) error { return nil }
func (s peekStage) Check(ctx context.Context, req *Request) (*Result, error) {
	if req.SessionID == "peek" {
		if _, err := req.Message.ReadAll(ctx, 10); err != nil {
			return nil, err
		}
		close(s.peeked)
		<-s.goOn
	}
	if _, err := req.Message.ReadAll(ctx, 0); err != nil {
		return nil, err
	}
	return &Result{Verdict: VerdictPass}, nil
}

// TestMessageBudgetGrowingShare: a call holding part of its share that
// asks for more does not wait holding it behind a call that waits for the
// rest (both stalled until their timeouts): it gives its share back and
// waits in line for the whole, and both calls get their turn.
func TestMessageBudgetGrowingShare(t *testing.T) {
	b := useBudget(t, 100)
	st := peekStage{peeked: make(chan struct{}), goOn: make(chan struct{})}
	call := budgetServer(t, st, 100)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a watchdog: no call should need it
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- call(ctx, "peek", 80) }()
	<-st.peeked
	go func() { done <- call(ctx, "big", 100) }()
	waitQueued(t, b)
	close(st.goOn)
	for range 2 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// softStage reads its message in a goroutine and gives up on it when
// giveUp is closed, as a stage with a time budget of its own would.
type softStage struct{ hold, giveUp chan struct{} }

func (softStage) Info() Info                                           { return Info{Name: "soft", Phases: []Phase{PhaseData}} }
func (softStage) Configure(context.Context, Env, map[string]any) error { return nil }
func (s softStage) Check(ctx context.Context, req *Request) (*Result, error) {
	if req.SessionID == "holder" {
		_, err := req.Message.ReadAll(ctx, 0)
		<-s.hold
		return &Result{Verdict: VerdictPass}, err
	}
	read := make(chan error, 1)
	go func() { _, err := req.Message.ReadAll(ctx, 0); read <- err }()
	select {
	case err := <-read:
		return &Result{Verdict: VerdictPass}, err
	case <-s.giveUp:
		return &Result{Verdict: VerdictNone}, nil
	}
}

// waitHeld returns once calls hold at least n bytes of b (and nobody waits).
func waitHeld(t *testing.T, b *budget, n int64) {
	t.Helper()
	for range 1_000_000 {
		if !b.sem.TryAcquire(b.size - n + 1) {
			return
		}
		b.sem.Release(b.size - n + 1)
		runtime.Gosched()
	}
	t.Fatalf("no call holds %d bytes", n)
}

// TestMessageBudgetCallEndsWhileWaiting: a stage that returns while a
// goroutine of its call still waits for the budget gets its answer to the
// gateway at once: the call's end does not wait behind the read, and the
// read stops waiting.
func TestMessageBudgetCallEndsWhileWaiting(t *testing.T) {
	b := useBudget(t, 100)
	st := softStage{hold: make(chan struct{}), giveUp: make(chan struct{})}
	defer close(st.hold)
	call := budgetServer(t, st, 100)
	go call(context.Background(), "holder", 60)
	waitHeld(t, b, 60)
	done := make(chan error, 1)
	go func() { done <- call(context.Background(), "soft", 50) }()
	waitQueued(t, b)
	close(st.giveUp)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute): // a watchdog: it returns at once
		t.Fatal("the call did not return after its stage did")
	}
}

// parallelStage reads its message whole in two goroutines at once (say, a
// header scan and a body scan) and waits for both, unless its session is
// "holder", which reads once and waits for release.
type parallelStage struct {
	release chan struct{}
	held    chan struct{}
}

func (parallelStage) Info() Info                                           { return Info{Name: "par", Phases: []Phase{PhaseData}} }
func (parallelStage) Configure(context.Context, Env, map[string]any) error { return nil }
func (s parallelStage) Check(ctx context.Context, req *Request) (*Result, error) {
	if req.SessionID == "holder" {
		if _, err := req.Message.ReadAll(ctx, 0); err != nil {
			return nil, err
		}
		close(s.held)
		<-s.release
		return &Result{Verdict: VerdictPass}, nil
	}
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := req.Message.ReadAll(ctx, 0)
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			return nil, err
		}
	}
	return &Result{Verdict: VerdictPass}, nil
}

// TestMessageBudgetParallelReads: two goroutines of one call reading its
// message at once take the call's share once; the second never waits in
// the budget's line for bytes its own call holds (it would wait until the
// call's timeout, and every later call of the plugin behind it). Here a
// 60-byte message under a 100-byte budget that another call holds for a
// while, and a message larger than the budget.
func TestMessageBudgetParallelReads(t *testing.T) {
	b := useBudget(t, 100)
	st := parallelStage{release: make(chan struct{}), held: make(chan struct{})}
	call := budgetServer(t, st, 150)
	go call(context.Background(), "holder", 60)
	<-st.held
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a watchdog: no call should need it
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx, "par", 60) }()
	waitQueued(t, b)
	close(st.release)
	if err := <-done; err != nil {
		t.Fatalf("a call reading its message in two goroutines: %v", err)
	}
	if err := call(ctx, "par", 150); err != nil {
		t.Fatalf("the same with a message larger than the budget: %v", err)
	}
	if !b.sem.TryAcquire(100) {
		t.Error("the budget is not whole again after the calls")
	}
}
