package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Reload makes specs the running set. Stages whose name, plugin and
// environment are unchanged keep their process and are configured again
// (a stage holding a state file keeps its lock); the others are started
// afresh. On any failure the old set stays as it was and the error names
// each stage at fault. Stages no longer in specs are stopped, after the
// calls in flight on them (Close waits for that).
func (h *Host) Reload(ctx context.Context, specs []Spec) error {
	h.load.Lock()
	defer h.load.Unlock()
	if h.closed {
		return ErrClosed
	}
	if err := checkSpecs(specs); err != nil {
		return err
	}
	if err := h.ensureDir(); err != nil {
		return err
	}
	h.mu.RLock()
	old := h.stages
	h.mu.RUnlock()

	// New processes are started first, and the stages that keep theirs
	// are given the new config only once every new one is up: a plugin
	// that takes its whole start timeout to fail (a minute) would
	// otherwise have the running stages answer with the new config, under
	// the old rules, for that long, before the reload was refused.
	next := make(map[string]*Stage, len(specs))
	var reused, fresh []*Stage
	var reusedSpecs []Spec
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, sp := range specs {
		if s, ok := old[sp.Name]; ok && sameProcess(s.Spec(), sp) && s.running() {
			next[sp.Name] = s
			reused = append(reused, s)
			reusedSpecs = append(reusedSpecs, sp)
			continue
		}
		s := newStage(h, sp)
		next[sp.Name] = s
		fresh = append(fresh, s)
		wg.Go(func() { errs[i] = s.launch(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		stopAll(fresh)
		return err
	}
	rerrs := make([]error, len(reused))
	for i, s := range reused {
		wg.Go(func() { rerrs[i] = s.reconfigure(ctx, reusedSpecs[i]) })
	}
	wg.Wait()
	if err := errors.Join(rerrs...); err != nil {
		stopAll(fresh)
		for _, s := range reused {
			wg.Go(func() { s.rollback(ctx) })
		}
		wg.Wait()
		return err
	}
	for _, s := range reused {
		s.commit()
	}
	h.mu.Lock()
	h.stages = next
	h.mu.Unlock()
	// A replaced or dropped stage takes no new call from here on (a
	// replaced one passes them to its successor); its process stops once
	// the calls in flight have ended, without holding up the reload.
	for name, s := range old {
		if n := next[name]; n != s {
			p, drained := s.closeForReload(n)
			h.retiring.Go(func() { s.finish(p, drained) })
		}
	}
	return nil
}

func checkSpecs(specs []Spec) error {
	seen := map[string]bool{}
	for _, sp := range specs {
		switch {
		case sp.Name == "":
			return fmt.Errorf("a stage has no name")
		case sp.Plugin == "":
			return fmt.Errorf("stage %s: no plugin", sp.Name)
		case seen[sp.Name]:
			return fmt.Errorf("stage %s: declared twice", sp.Name)
		}
		seen[sp.Name] = true
	}
	return nil
}
