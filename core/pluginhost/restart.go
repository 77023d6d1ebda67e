package pluginhost

import (
	"fmt"
	"slices"
	"time"

	"github.com/portcullis-mta/portcullis/core/metrics"
)

// crashLoopWindow: a plugin that dies sooner than this after its start
// doubles the restart delay; one that ran longer starts again from
// MinBackoff.
const crashLoopWindow = time.Minute

// lost takes a dead process out of service and restarts the plugin in the
// background. Only the first caller to notice a given death acts.
func (s *Stage) lost(p *proc, cause error) {
	s.mu.Lock()
	if s.cur != p || s.closed {
		s.mu.Unlock()
		return
	}
	s.cur = nil
	if time.Since(p.started) > crashLoopWindow || s.backoff == 0 {
		s.backoff = s.h.o.MinBackoff
	} else {
		s.backoff = min(2*s.backoff, s.h.o.MaxBackoff)
	}
	delay := s.backoff
	s.wg.Add(1)
	s.mu.Unlock()
	metrics.Active().PluginRestart(s.name)
	s.h.o.Logger.Warn("plugin died; restarting", "stage", s.name, "pid", p.pid, "error", cause, "delay", delay)
	go s.restart(p, delay)
}

func (s *Stage) restart(old *proc, delay time.Duration) {
	defer s.wg.Done()
	old.kill() // reaps it and removes its sockets
	for {
		t := time.NewTimer(delay)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		p, err := s.h.start(s.ctx, s.Spec())
		if err == nil {
			err = s.sameInfo(p)
		}
		if err == nil {
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				p.kill()
				return
			}
			s.cur = p
			s.mu.Unlock()
			s.watch(p)
			s.h.o.Logger.Info("plugin restarted", "stage", s.name, "pid", p.pid)
			return
		}
		if s.ctx.Err() != nil {
			return
		}
		delay = min(2*delay, s.h.o.MaxBackoff)
		s.h.o.Logger.Error("plugin restart failed", "stage", s.name, "error", err, "retry_in", delay)
	}
}

// sameInfo refuses (and stops) a restarted process that is not the plugin
// the stage was loaded with: its file was replaced by another plugin, or by
// one that asks for other phases. The pipeline was built for the old one
// and would call the new one at phases it does not serve; a Reload starts
// a changed plugin as a new stage, bound into a new pipeline. A new
// version that says the same is taken.
func (s *Stage) sameInfo(p *proc) error {
	old := s.Info()
	if p.info.Name == old.Name && slices.Equal(p.info.Phases, old.Phases) {
		return nil
	}
	p.kill()
	return fmt.Errorf("plugin %s changed on disk: it is now %s (phases %v), was %s (phases %v); reload to start the new one",
		s.Spec().Plugin, p.info.Name, p.info.Phases, old.Name, old.Phases)
}
