// Package watchfile keeps a value parsed from a file current without a
// reload signal: a lookup stats the file at most once per RecheckEvery and
// re-reads it when its mtime or size changed, or when it is another file
// (an inode of its own): editors that save by renaming a new file over the
// old one (vim, sed -i) and Kubernetes' ConfigMap volumes (a ..data
// symlink swapped to a new directory) replace the file, and the new one
// can carry the old size and mtime. A failed reload keeps the
// previous value and is logged once per distinct error. The users file
// (AUTH) and the recipients file (relay.recipients) work this way, so an
// admin's edit shows within a second. Safe for concurrent use.
package watchfile

import (
	"errors"
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
	stat      os.FileInfo // of the version in cur (symlinks followed)
	lastError string      // the last reload failure logged, to log it once
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
	f.checked, f.stat = f.now(), st
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
	if err == nil && sameVersion(st, f.stat) {
		return f.cur.Load()
	}
	v, st, err := f.read(st, err)
	if err != nil {
		if msg := err.Error(); msg != f.lastError {
			f.log.Error(f.what+" reload failed, keeping the old version", "path", f.path, "err", err)
			f.lastError = msg
		}
		return f.cur.Load()
	}
	f.cur.Store(v)
	f.stat, f.lastError = st, ""
	attrs := []any{"path", f.path}
	if f.summary != nil {
		attrs = append(attrs, f.summary(v)...)
	}
	f.log.Info(f.what+" reloaded", attrs...)
	return v
}

// readTries bounds the re-reads of a file that keeps changing while read.
const readTries = 3

// read parses the file whose stat (or stat error) is st, err. A file that
// changed while it was parsed was being written (os.WriteFile, "cat >"
// truncate first): what was read may be a part of it, an empty recipients
// file that would reject every address with 550 5.1.1. It is read again,
// and it is an error when it does not hold still.
func (f *File[T]) read(st os.FileInfo, err error) (*T, os.FileInfo, error) {
	for range readTries {
		if err != nil {
			return nil, nil, err
		}
		var v *T
		if v, err = f.parse(f.path); err != nil {
			return nil, nil, err
		}
		after, err2 := os.Stat(f.path)
		if err2 == nil && sameVersion(after, st) {
			return v, st, nil
		}
		st, err = after, err2
	}
	return nil, nil, errors.New("the file kept changing while it was read")
}

// sameVersion reports whether a and b are the same file with the same
// size and modification time.
func sameVersion(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}
