package queue

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Another process (the CLI) sees the messages a running daemon holds in
// its intake log by reading the segments: they are listed as being
// delivered (a daemon worker has them or is about to), and can be shown,
// but not deleted or flushed until they leave the log, which takes at most
// intakeMaxAge.

// foreignIntake reads every segment of the directory, in this Dir's view
// a foreign one (this Dir writes none), and returns the live messages'
// .msg images by ID. A message written out to its own file is left out:
// the file is the truth.
func (d *Dir) foreignIntake(only string) map[string][]byte {
	if d.in != nil {
		return nil
	}
	names, err := d.names()
	if err != nil {
		return nil
	}
	out := map[string][]byte{}
	for _, n := range names {
		if !strings.HasPrefix(n, intakePrefix) || !strings.HasSuffix(n, intakeExt) {
			continue
		}
		b, err := readLimited(filepath.Join(d.path, n))
		if err != nil {
			continue
		}
		msgs, _ := parseSegment(b)
		for _, m := range msgs {
			if only != "" && m.id != only {
				continue
			}
			if _, err := os.Stat(d.msgPath(m.id)); err == nil {
				continue
			}
			out[m.id] = m.img
		}
	}
	return out
}

func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<30))
}

// foreignEntry decodes an image from another process's log.
func foreignEntry(img []byte) (layout, *Envelope, error) {
	return readTrailer(bytes.NewReader(img), int64(len(img)))
}

// foreignEntries lists the messages of other processes' logs, for Entries.
func (d *Dir) foreignEntries() []Entry {
	var out []Entry
	for _, img := range d.foreignIntake("") {
		if lay, env, err := foreignEntry(img); err == nil {
			out = append(out, Entry{env, lay.size(), true})
		}
	}
	return out
}

// foreignGet returns id from another process's log.
func (d *Dir) foreignGet(id string) (layout, *Envelope, []byte, bool) {
	img, ok := d.foreignIntake(id)[id]
	if !ok {
		return layout{}, nil, nil, false
	}
	lay, env, err := foreignEntry(img)
	if err != nil {
		return layout{}, nil, nil, false
	}
	return lay, env, img, true
}
