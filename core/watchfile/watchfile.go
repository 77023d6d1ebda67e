// Package watchfile keeps a value parsed from a file current without a
// reload signal: a lookup stats the file at most once per RecheckEvery and
// re-reads it when its mtime or size changed. A failed reload keeps the
// previous value and is logged once per distinct error. The users file
// (AUTH) and the recipients file (relay.recipients) work this way, so an
// admin's edit shows within a second. Safe for concurrent use.
package watchfile

import (
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// RecheckEvery bounds how often the file is stat'ed: lookups happen per
// RCPT or AUTH, a stat per second is cheap and a change shows within it.
const RecheckEvery = time.Second

// File is the current parse of one file.
type File[T any] struct {
	path    string
	what    string // "users file", for log lines
	parse   func(string) (*T, error)
	summary func(*T) []any // attributes for the "reloaded" log line
	log     *slog.Logger
	now     func() time.Time

	cur atomic.Pointer[T]

	mu        sync.Mutex // serialises reloads
	checked   time.Time
	modTime   time.Time
	size      int64
	lastError string // the last reload failure logged, to log it once
}

// Load parses the file at path. what names it in log lines; summary gives
// the attributes logged after a reload (nil: none).
func Load[T any](path, what string, parse func(string) (*T, error), summary func(*T) []any) (*File[T], error) {
	f := &File[T]{path: path, what: what, parse: parse, summary: summary,
		log: slog.New(slog.DiscardHandler), now: time.Now}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	v, err := parse(path)
	if err != nil {
		return nil, err
	}
	f.cur.Store(v)
	f.checked, f.modTime, f.size = f.now(), st.ModTime(), st.Size()
	return f, nil
}

// SetLogger sets where reloads are logged (default: nowhere).
func (f *File[T]) SetLogger(l *slog.Logger) { f.log = l }

// SetClock replaces the clock and starts a new recheck interval (tests).
func (f *File[T]) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now, f.checked = now, now()
}

// Get returns the current value, re-reading the file first when it changed.
func (f *File[T]) Get() *T {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if now.Sub(f.checked) < RecheckEvery && !now.Before(f.checked) {
		return f.cur.Load()
	}
	f.checked = now
	st, err := os.Stat(f.path)
	if err == nil && st.ModTime().Equal(f.modTime) && st.Size() == f.size {
		return f.cur.Load()
	}
	var v *T
	if err == nil {
		v, err = f.parse(f.path)
	}
	if err != nil {
		if msg := err.Error(); msg != f.lastError {
			f.log.Error(f.what+" reload failed, keeping the old version", "path", f.path, "err", err)
			f.lastError = msg
		}
		return f.cur.Load()
	}
	f.cur.Store(v)
	f.modTime, f.size, f.lastError = st.ModTime(), st.Size(), ""
	attrs := []any{"path", f.path}
	if f.summary != nil {
		attrs = append(attrs, f.summary(v)...)
	}
	f.log.Info(f.what+" reloaded", attrs...)
	return v
}
