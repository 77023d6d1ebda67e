// Package logbuf is a buffer that several goroutines may write at once:
// the sink of a logger whose lines a test reads while the code under test
// is still running.
package logbuf

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer collects writes from many goroutines.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Count is how many times sub was written so far.
func (l *Buffer) Count(sub string) int { return strings.Count(l.String(), sub) }
