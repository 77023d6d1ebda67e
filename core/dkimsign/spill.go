package dkimsign

import (
	"bytes"
	"io"
	"os"
)

// spill keeps what is written in memory up to limit bytes and in an
// unlinked temporary file past that, so a large message never sits whole
// in memory while it is signed.
type spill struct {
	limit int
	dir   string
	mem   bytes.Buffer
	f     *os.File
}

func (s *spill) Write(p []byte) (int, error) {
	if s.f == nil && s.mem.Len()+len(p) <= s.limit {
		return s.mem.Write(p)
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "dkimsign-*")
		if err != nil {
			return 0, err
		}
		// Unlinked at once: nothing is left behind whatever happens to
		// the reader; the descriptor keeps the data until it is closed.
		_ = os.Remove(f.Name())
		s.f = f
		if _, err := s.f.Write(s.mem.Bytes()); err != nil {
			return 0, err
		}
		s.mem = bytes.Buffer{}
	}
	return s.f.Write(p)
}

// reader returns the bytes written; a file closes itself at EOF.
func (s *spill) reader() (io.Reader, error) {
	if s.f == nil {
		return &s.mem, nil
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		s.discard()
		return nil, err
	}
	return &closeAtEOF{f: s.f}, nil
}

func (s *spill) discard() {
	if s.f != nil {
		_ = s.f.Close()
	}
}

// closeAtEOF closes the file when it has been read to the end or fails.
// A reader abandoned half way is closed by the os.File finalizer.
type closeAtEOF struct{ f *os.File }

func (c *closeAtEOF) Read(p []byte) (int, error) {
	if c.f == nil {
		return 0, io.EOF
	}
	n, err := c.f.Read(p)
	if err != nil {
		_ = c.f.Close()
		c.f = nil
	}
	return n, err
}

// Close releases the file early; delivery may call it through io.Closer.
func (c *closeAtEOF) Close() error {
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}
