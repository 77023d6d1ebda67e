package textfilter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// ruleset is one compiled generation of the lists; it is replaced whole on
// reload, so a Check never sees a half-built one.
type ruleset struct {
	cfg       config
	patterns  []pattern // literals first (their index is the matcher id), then regexes
	literals  int
	ac        *matcher
	stamps    []fileStamp
	reloadErr atomic.Value // string: why the last reload failed
}

type fileStamp struct {
	path string
	info os.FileInfo // of the file read (its identity, size and time); nil: it could not be stat'ed
}

// restamp stats the files of seen again.
func restamp(seen []fileStamp) []fileStamp {
	out := make([]fileStamp, len(seen))
	for i, s := range seen {
		out[i].path = s.path
		if st, err := os.Stat(s.path); err == nil {
			out[i].info = st
		}
	}
	return out
}

// changedPaths names the files whose stamps differ between old and cur
// (restamp(old)).
func changedPaths(old, cur []fileStamp) []string {
	var out []string
	for i, o := range old {
		if !sameVersion(o.info, cur[i].info) {
			out = append(out, o.path)
		}
	}
	return out
}

// sameVersion reports whether a and b are the same file with the same size
// and time, or both nil (not there).
func sameVersion(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// loadRuleset reads and compiles every list. The errors of all the lists
// are reported together, so that `portcullis check` names every missing
// or broken file at once.
func loadRuleset(cfg config, dir string) (*ruleset, error) {
	r := &ruleset{cfg: cfg}
	var lits, res []pattern
	var problems []string
	for _, l := range cfg.Lists {
		ps, err := loadList(l, dir, r)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		for _, p := range ps {
			if p.re == nil {
				lits = append(lits, p)
			} else {
				res = append(res, p)
			}
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	r.patterns, r.literals = append(lits, res...), len(lits)
	keys := make([]string, len(lits))
	for i, p := range lits {
		keys[i] = normalize(p.text)
	}
	r.ac = newMatcher(keys)
	return r, nil
}

func loadList(l listConfig, dir string, r *ruleset) ([]pattern, error) {
	var out []pattern
	if l.File != "" {
		path := l.File
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", l.Name, err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", l.Name, err)
		}
		r.stamps = append(r.stamps, fileStamp{path, st})
		if out, err = parseList(l.Name, f, l.Weight); err != nil {
			return nil, fmt.Errorf("list %s: %w", path, err)
		}
	}
	for _, line := range l.Patterns {
		p, ok, err := parseLine(line, l.Weight)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", l.Name, err)
		}
		if ok {
			p.list = l.Name
			out = append(out, p)
		}
	}
	return out, nil
}

// changed reports whether a list file is another file than when last read
// (seen: an editor or a ConfigMap swap renamed a new one over it, perhaps
// with the same size and time), its size or time differs, or it came or
// went, and every changed file has been left alone for the settle time: a
// file being written in place (truncated, then filled) must not be read
// half way. Writing a new file and renaming it over the old one is the
// safe way to update a list, and is picked up as soon as settled.
func changed(seen []fileStamp, settle time.Duration, now time.Time) bool {
	changed := false
	for _, s := range seen {
		st, err := os.Stat(s.path)
		switch {
		case err != nil:
			if s.info != nil {
				changed = true // gone: the reload reports it and keeps the rules
			}
		case !sameVersion(s.info, st):
			if now.Sub(st.ModTime()) < settle {
				return false
			}
			changed = true
		}
	}
	return changed
}

// match returns the ids of the patterns found in any of texts, or ctx's
// error when it is done before the last text: normalising and matching a
// long text is the bulk of a call's CPU, which a call the gateway gave up
// on must not go on spending. cut reports a text that normalising made
// longer than max_text_bytes (NFKC writes up to 18 characters for one,
// U+FDFA): what is matched is cut to it as well.
func (r *ruleset) match(ctx context.Context, texts []string) (hits map[int]bool, cut bool, err error) {
	hits = map[int]bool{}
	for _, t := range texts {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		if t == "" {
			continue
		}
		n := normalize(t)
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		if max := r.cfg.MaxTextBytes; max > 0 && len(n) > max {
			n, cut = clipString(n, max), true
		}
		r.ac.scan(n, func(id int32) { hits[int(id)] = true })
		for i := r.literals; i < len(r.patterns); i++ {
			if err := ctx.Err(); err != nil {
				return nil, false, err // between expressions: one cannot be stopped half way
			}
			if !hits[i] && r.patterns[i].re.MatchString(n) {
				hits[i] = true
			}
		}
	}
	return hits, cut, nil
}
