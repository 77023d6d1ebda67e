// Package msgsrc reads messages for training and classifying from what mail
// admins have lying around: single files, directories and maildirs (walked
// recursively), mbox files (RFC 4155) and .tar.gz / .tgz / .tar archives of
// any of these.
package msgsrc

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MaxMessageBytes bounds one message read from a source; the rest of an
// oversized message is dropped (a Bayesian filter needs its start only).
const MaxMessageBytes = 32 << 20

// Message is one message and the name it is reported under: the file, the
// member path inside an archive, or "file#N" for the Nth message of an mbox.
type Message struct {
	Name string
	Data []byte
}

// Walk calls fn for every message found at path, in a stable order. An
// error from fn stops the walk and is returned.
func Walk(path string, fn func(Message) error) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return walkDir(path, fn)
	}
	return walkFile(path, fn)
}

func walkDir(root string, fn func(Message) error) error {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, f := range files {
		if err := walkFile(f, fn); err != nil {
			return err
		}
	}
	return nil
}

func walkFile(path string, fn func(Message) error) error {
	switch {
	case hasSuffixFold(path, ".tar.gz"), hasSuffixFold(path, ".tgz"):
		return walkTar(path, true, fn)
	case hasSuffixFold(path, ".tar"):
		return walkTar(path, false, fn)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxMessageBytes))
	if err != nil {
		return err
	}
	return emit(path, data, fn)
}

// emit splits data as an mbox when it holds more than one message.
func emit(name string, data []byte, fn func(Message) error) error {
	msgs := SplitMbox(data)
	if len(msgs) == 1 {
		return fn(Message{Name: name, Data: msgs[0]})
	}
	for i, m := range msgs {
		if err := fn(Message{Name: fmt.Sprintf("%s#%d", name, i+1), Data: m}); err != nil {
			return err
		}
	}
	return nil
}

func walkTar(path string, gz bool, fn func(Message) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if gz {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if h.Typeflag != tar.TypeReg || strings.HasPrefix(filepath.Base(h.Name), ".") {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, MaxMessageBytes))
		if err != nil {
			return fmt.Errorf("%s: %s: %w", path, h.Name, err)
		}
		if err := emit(h.Name, data, fn); err != nil {
			return err
		}
	}
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}
