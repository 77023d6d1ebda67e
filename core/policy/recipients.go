package policy

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// recheckEvery bounds how often the recipients file is stat'ed: lookups
// happen per RCPT, a stat per second is cheap and a change shows within it.
const recheckEvery = time.Second

// recipients is the relay.recipients file: valid addresses in relay.domains.
type recipients struct {
	path string
	log  *slog.Logger
	now  func() time.Time

	set atomic.Pointer[recipientSet]

	mu        sync.Mutex // serialises reloads
	checked   time.Time
	modTime   time.Time
	size      int64
	lastError string // the last reload failure logged, to log it once
}

// recipientSet is one loaded version of the file.
type recipientSet struct {
	addrs   map[string]bool // "local@domain", lower-cased
	domains map[string]bool // from "@domain" lines
}

func loadRecipients(path string, logger *slog.Logger, now func() time.Time) (*recipients, error) {
	r := &recipients{path: path, log: logger, now: now}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	set, err := readRecipients(path)
	if err != nil {
		return nil, err
	}
	r.set.Store(set)
	r.checked, r.modTime, r.size = now(), st.ModTime(), st.Size()
	return r, nil
}

// readRecipients parses the file: one address a line, "@domain" for a
// whole domain, '#' starts a comment, case-insensitive.
func readRecipients(path string) (*recipientSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	set := &recipientSet{addrs: map[string]bool{}, domains: map[string]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if d, ok := strings.CutPrefix(line, "@"); ok {
			dom, err := parseDomain(d)
			if err != nil {
				return nil, fmt.Errorf("%s:%d:1: %v", path, n, err)
			}
			set.domains[dom] = true
			continue
		}
		a, err := ParsePath(line)
		if err != nil || a.IsNull() {
			return nil, fmt.Errorf("%s:%d:1: invalid address %q", path, n, line)
		}
		set.addrs[key(a)] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return set, nil
}

func key(a Address) string { return strings.ToLower(a.Local) + "@" + a.Domain }

// Has reports whether a is listed, reloading the file first if it changed.
func (r *recipients) Has(a Address) bool {
	r.maybeReload()
	set := r.set.Load()
	return set.domains[a.Domain] || set.addrs[key(a)]
}

// maybeReload re-reads the file when its mtime or size changed, at most
// once per recheckEvery. A failed reload keeps the old list and is logged.
func (r *recipients) maybeReload() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checked) < recheckEvery && !now.Before(r.checked) {
		return
	}
	r.checked = now
	st, err := os.Stat(r.path)
	if err == nil && st.ModTime().Equal(r.modTime) && st.Size() == r.size {
		return
	}
	var set *recipientSet
	if err == nil {
		set, err = readRecipients(r.path)
	}
	if err != nil {
		if msg := err.Error(); msg != r.lastError {
			r.log.Error("recipients file reload failed, keeping the old list", "path", r.path, "err", err)
			r.lastError = msg
		}
		return
	}
	r.set.Store(set)
	r.modTime, r.size, r.lastError = st.ModTime(), st.Size(), ""
	r.log.Info("recipients file reloaded", "path", r.path,
		"addresses", len(set.addrs), "domains", len(set.domains))
}
