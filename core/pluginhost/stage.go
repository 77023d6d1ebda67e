package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
)

// Stage is one configured stage and the process serving it. It is safe for
// concurrent use by all sessions.
type Stage struct {
	h    *Host
	name string

	ctx    context.Context // cancelled when the stage is stopped
	cancel context.CancelFunc
	wg     sync.WaitGroup // the restart goroutine

	mu      sync.Mutex
	spec    Spec
	pending *Spec // a config applied by Reload, not yet committed
	cur     *proc // nil while the plugin is being restarted
	info    sdk.Info
	closed  bool
	backoff time.Duration

	inflight int           // calls holding a process
	drained  chan struct{} // closed when the last call ends after stop began
	next     *Stage        // the stage that replaced this one in a Reload
	byReload bool          // a Reload closed it (see Check)
}

// drainTimeout bounds how long a stopped stage waits for its calls in
// flight (which end at their own deadlines) before it kills the process.
const drainTimeout = 30 * time.Second

func newStage(h *Host, sp Spec) *Stage {
	ctx, cancel := context.WithCancel(context.Background())
	return &Stage{h: h, name: sp.Name, spec: sp, ctx: ctx, cancel: cancel}
}

// Name is the stage's name (results.<name> in rules).
func (s *Stage) Name() string { return s.name }

// Info is what the plugin said about itself at start: its phases are the
// only ones the pipeline should call it at.
func (s *Stage) Info() sdk.Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

// Spec is the stage's current configuration.
func (s *Stage) Spec() Spec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spec
}

// PID is the plugin's process ID, 0 while it is being restarted.
func (s *Stage) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return 0
	}
	return s.cur.pid
}

func (s *Stage) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil && !s.cur.client.Exited()
}

// Check runs one phase of one transaction through the plugin. It returns
// when the plugin answers or ctx ends, whichever is first. An error wraps
// hostrpc.ErrUnavailable when the plugin is down (a restart is then under
// way), context.DeadlineExceeded on a timeout, or carries the stage's own
// error text; the pipeline maps each to the stage's on_error.
//
// A stage replaced in a Reload passes calls to its replacement (sessions
// that began before the reload still hold it), as long as the replacement
// serves the phase. Otherwise a stage dropped or replaced by a Reload
// returns pipeline.ErrRemoved (the session's pipeline skips it, as the new
// rules do), and one stopped by Close returns ErrClosed.
func (s *Stage) Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error) {
	if req == nil {
		return nil, fmt.Errorf("stage %s: no request", s.name)
	}
	p, err := s.proc()
	if err != nil {
		if n := s.successor(req.Phase); n != nil && errors.Is(err, ErrClosed) {
			return n.Check(ctx, req)
		}
		if errors.Is(err, ErrClosed) && s.reloaded() {
			return nil, fmt.Errorf("stage %s: %w (%w)", s.name, pipeline.ErrRemoved, err)
		}
		return nil, err
	}
	defer s.release()
	res, err := p.rpc.Check(ctx, req)
	if err == nil {
		if p.timeouts.Load() != 0 {
			p.timeouts.Store(0)
		}
		return res, nil
	}
	switch {
	case errors.Is(err, hostrpc.ErrUnavailable) || p.client.Exited():
		s.lost(p, err)
	case errors.Is(err, context.DeadlineExceeded):
		if n := p.timeouts.Add(1); s.h.o.WedgedAfter > 0 && n >= int64(s.h.o.WedgedAfter) {
			s.lost(p, fmt.Errorf("presumed hung: %d calls in a row timed out", n))
		}
	}
	return nil, fmt.Errorf("stage %s: %w", s.name, err)
}

// proc returns the live process, noticing one that died between calls.
// The caller holds the process until it calls release: stop lets it finish.
func (s *Stage) proc() (*proc, error) {
	s.mu.Lock()
	p, closed := s.cur, s.closed
	if !closed && p != nil {
		s.inflight++
	}
	s.mu.Unlock()
	switch {
	case closed:
		return nil, fmt.Errorf("stage %s: %w", s.name, ErrClosed)
	case p == nil:
		return nil, fmt.Errorf("stage %s: %w: restarting", s.name, hostrpc.ErrUnavailable)
	case p.client.Exited():
		s.release()
		s.lost(p, errors.New("process exited"))
		return nil, fmt.Errorf("stage %s: %w: process exited", s.name, hostrpc.ErrUnavailable)
	}
	return p, nil
}

// release ends a call that proc let through.
func (s *Stage) release() {
	s.mu.Lock()
	s.inflight--
	if s.inflight == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
	s.mu.Unlock()
}

// reloaded reports a stage that a Reload closed (dropped, or replaced by
// one that no longer serves some phase), as opposed to Close.
func (s *Stage) reloaded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed && s.byReload
}

// successor is the stage that replaced s, if it serves phase.
func (s *Stage) successor(phase sdk.Phase) *Stage {
	s.mu.Lock()
	n := s.next
	s.mu.Unlock()
	if n == nil || !slices.Contains(n.Info().Phases, phase) {
		return nil
	}
	return n
}

// launch starts the first process of a new stage.
func (s *Stage) launch(ctx context.Context) error {
	p, err := s.h.start(ctx, s.Spec())
	if err != nil {
		return fmt.Errorf("stage %s: %w", s.name, err)
	}
	s.mu.Lock()
	s.cur, s.info = p, p.info
	s.mu.Unlock()
	s.watch(p)
	return nil
}

// watch restarts the plugin as soon as p exits on its own, instead of when
// the next call finds it dead: that call, perhaps a message's only check
// long after the crash, would fail and get the stage's on_error (a reject,
// a tempfail, or a pass unchecked). An exit the host caused (Close, a
// Reload, a restart) is ignored by lost, as p is no longer current.
func (s *Stage) watch(p *proc) {
	go func() {
		<-p.runner.exited
		s.lost(p, errors.New("process exited"))
	}()
}

// reconfigure gives the running process a new config during Reload. A
// Configure that times out or is cut (ErrConfigureTimeout) may still apply
// sp later, in a process the host would believe runs the committed
// config: the process is killed, and the restart configures a new one
// with the committed config (Spec), as after a crash.
func (s *Stage) reconfigure(ctx context.Context, sp Spec) error {
	s.mu.Lock()
	p := s.cur
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("stage %s: %w: restarting", s.name, hostrpc.ErrUnavailable)
	}
	if err := callConfigure(ctx, p.rpc, sp); err != nil {
		if errors.Is(err, ErrConfigureTimeout) {
			s.lost(p, err)
		}
		return fmt.Errorf("stage %s: %w", s.name, err)
	}
	s.mu.Lock()
	s.pending = &sp
	s.mu.Unlock()
	return nil
}

// rollback puts back the committed config after a failed Reload, within
// rollbackTimeout whatever is left of ctx. A process that does not take it
// back in time (ErrConfigureTimeout) is killed and restarted with it.
func (s *Stage) rollback(ctx context.Context) {
	s.mu.Lock()
	pending, p, sp := s.pending, s.cur, s.spec
	s.pending = nil
	s.mu.Unlock()
	if pending == nil || p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	if err := callConfigure(ctx, p.rpc, sp); err != nil {
		s.h.o.Logger.Error("restoring the previous config failed", "stage", s.name, "error", err)
		if errors.Is(err, ErrConfigureTimeout) {
			s.lost(p, err)
		}
	}
}

func (s *Stage) commit() {
	s.mu.Lock()
	if s.pending != nil {
		s.spec, s.pending = *s.pending, nil
	}
	s.mu.Unlock()
}

// stop refuses new calls, lets the calls in flight finish (for at most
// drainTimeout), kills the process and waits for a restart in progress to
// give up.
func (s *Stage) stop() { s.finish(s.close(nil)) }

// close refuses new calls (passing them to next, if any, see Check) and
// cancels a restart; finish, given its result, does the rest of stop.
func (s *Stage) close(next *Stage) (p *proc, drained <-chan struct{}) {
	s.mu.Lock()
	p = s.cur
	s.cur, s.closed, s.next = nil, true, next
	if s.inflight > 0 && s.drained == nil {
		s.drained = make(chan struct{})
	}
	drained = s.drained
	s.mu.Unlock()
	s.cancel()
	return p, drained
}

// closeForReload is close for a stage a Reload dropped or replaced: a call
// it cannot pass to next then returns pipeline.ErrRemoved.
func (s *Stage) closeForReload(next *Stage) (p *proc, drained <-chan struct{}) {
	s.mu.Lock()
	s.byReload = true
	s.mu.Unlock()
	return s.close(next)
}

func (s *Stage) finish(p *proc, drained <-chan struct{}) {
	if drained != nil {
		t := time.NewTimer(drainTimeout)
		select {
		case <-drained:
		case <-t.C:
			s.h.o.Logger.Warn("stopping plugin with calls still in flight", "stage", s.name, "waited", drainTimeout)
		}
		t.Stop()
	}
	if p != nil {
		p.kill()
	}
	s.wg.Wait()
}
