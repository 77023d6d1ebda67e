package queue

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Scratch files let stages in other processes read a message that is still
// in memory (Draft.Path) without a file being created and removed for each
// message, which costs more here than the rest of the message's handling.
// A draft borrows one, writes its bytes from offset 0, and gives it back at
// Commit or Abort; readers take Size bytes from Offset, so what an earlier,
// longer message left past that point is never read. Each is flocked by its
// Dir; Open removes those of processes that are gone.
const scratchExt = ".scratch"

type scratchFile struct {
	path string
	f    *os.File
}

type scratchPool struct {
	d     *Dir
	token string
	mu    sync.Mutex
	free  []*scratchFile
	n     int
	all   []*scratchFile
}

func (p *scratchPool) get() (*scratchFile, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k := len(p.free); k > 0 {
		s := p.free[k-1]
		p.free = p.free[:k-1]
		return s, nil
	}
	p.n++
	path := p.d.ownPath(p.token, p.n, scratchExt)
	f, err := createLocked(path, p.d.own)
	if err != nil {
		return nil, err
	}
	s := &scratchFile{path: path, f: f}
	p.all = append(p.all, s)
	return s, nil
}

func (p *scratchPool) put(s *scratchFile) {
	p.mu.Lock()
	p.free = append(p.free, s)
	p.mu.Unlock()
}

// close removes every scratch file of the pool.
func (p *scratchPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.all {
		os.Remove(s.path)
		s.f.Close()
	}
	p.all, p.free = nil, nil
}

// removeStaleScratch removes the scratch files no live process holds, and
// log or scratch files whose creator died before naming them.
func (d *Dir) removeStaleScratch(names []string) {
	for _, n := range names {
		if !strings.HasPrefix(n, intakePrefix) || !(strings.HasSuffix(n, scratchExt) || strings.HasSuffix(n, newSuffix)) {
			continue
		}
		p := filepath.Join(d.path, n)
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				d.log.Warn("queue: cannot remove scratch file", "file", n, "err", err)
			}
		}
		f.Close()
	}
}
