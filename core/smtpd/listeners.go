package smtpd

import (
	"fmt"
	"net"

	"github.com/portcullis-mta/portcullis/core/config"
)

// Reloading is a reload that Prepare has made ready: the new Deps are
// checked and the sockets of new or moved listeners are bound, but nothing
// is in force yet. Exactly one of Commit or Cancel must follow.
//
// Binding first is what lets a reload fail whole: an address in use
// refuses it while the old listeners keep accepting. A listener whose name
// and address stay keeps its socket, so it never refuses a connection.
// Its tls, auth and proxy_protocol modes need no rebind: each connection
// reads them from the generation it is admitted under.
type Reloading struct {
	s       *Server
	g       *generation
	bound   map[string]net.Listener // by name: listeners new or with a new address
	renamed map[string]string       // new name -> old name: a listener renamed on the same address keeps its socket
}

// Prepare checks d and binds what its listeners need. The caller
// serializes reloads (core/daemon holds its lock from Prepare to Commit).
func (s *Server) Prepare(d Deps) (*Reloading, error) {
	g, err := s.newGeneration(d)
	if err != nil {
		return nil, err
	}
	r := &Reloading{s: s, g: g, bound: map[string]net.Listener{}, renamed: map[string]string{}}
	s.mu.Lock()
	var want []*listenerConf
	if s.started && !s.draining.Load() { // before Start, Start binds them all
		for name, lc := range g.listeners {
			if was := s.gen.listeners[name]; s.lns[name] == nil || was == nil || was.Address != lc.Address {
				if old := s.renamedFrom(g, lc, r.renamed); old != "" {
					r.renamed[name] = old
					continue
				}
				want = append(want, lc)
			}
		}
	}
	s.mu.Unlock()
	// Outside the lock: an address with a host name may need DNS.
	for _, lc := range want {
		ln, err := net.Listen(config.ListenNetwork(lc.Address), lc.Address)
		if err != nil {
			r.Cancel()
			return nil, fmt.Errorf("smtpd: listener %s: %w", lc.Name, err)
		}
		r.bound[lc.Name] = ln
	}
	return r, nil
}

// renamedFrom returns the listener of the running config that lc takes
// over: one on the same address that the new config g drops, not claimed
// already. Binding a second socket there would fail (address in use), so
// the socket is handed over instead. The caller holds s.mu.
func (s *Server) renamedFrom(g *generation, lc *listenerConf, claimed map[string]string) string {
	taken := func(old string) bool {
		for _, o := range claimed {
			if o == old {
				return true
			}
		}
		return false
	}
	for old, was := range s.gen.listeners {
		if was.Address == lc.Address && g.listeners[old] == nil && s.lns[old] != nil && !taken(old) {
			return old
		}
	}
	return ""
}

// Commit puts the reload in force: new connections get the new Deps, the
// sockets bound by Prepare start accepting, and listeners replaced or no
// longer configured are closed. Sessions accepted on those go on.
func (r *Reloading) Commit() {
	s := r.s
	var closing []net.Listener
	s.mu.Lock()
	if s.draining.Load() { // Shutdown closed everything; open nothing again
		s.mu.Unlock()
		r.Cancel()
		return
	}
	old := s.gen
	s.gen = r.g
	s.startGeneration(r.g)
	for name, from := range r.renamed {
		ln := s.lns[from]
		delete(s.lns, from)
		s.lns[name] = ln
		p := s.loopName[from]
		delete(s.loopName, from)
		p.Store(&name)
		s.loopName[name] = p
		r.g.log.Info("listener renamed", "listener", name, "was", from, "address", ln.Addr().String())
	}
	for name, ln := range r.bound {
		if prev := s.lns[name]; prev != nil {
			r.g.log.Info("listener moved", "listener", name, "address", prev.Addr().String())
			closing = append(closing, prev)
		}
		s.lns[name] = ln
		s.startLoop(name, ln, r.g.listeners[name])
		r.g.log.Info("listening", "listener", name, "address", ln.Addr().String())
	}
	for name, ln := range s.lns {
		if r.g.listeners[name] == nil {
			r.g.log.Info("listener closed", "listener", name, "address", ln.Addr().String())
			closing = append(closing, ln)
			delete(s.lns, name)
			delete(s.loopName, name)
		}
	}
	s.mu.Unlock()
	old.ln.Close() // its Serve returns; its sessions go on
	for _, ln := range closing {
		_ = ln.Close() // its accept loop ends; its sessions go on
	}
}

// Cancel gives up the reload and closes what Prepare bound.
func (r *Reloading) Cancel() {
	for _, ln := range r.bound {
		_ = ln.Close()
	}
	r.g.ln.Close()
}
