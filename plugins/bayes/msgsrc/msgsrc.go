// Package msgsrc reads messages for training and classifying from what mail
// admins have lying around: single files, directories and maildirs (walked
// recursively), mbox files (RFC 4155) and .tar.gz / .tgz / .tar archives of
// any of these. Hidden files and directories and a maildir's tmp are not
// read; Problem tells a caller which of the rest are not messages.
package msgsrc

import (
	"archive/tar"
	"bytes"
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
		if d.IsDir() && p != root && skipDir(p, d.Name()) {
			return filepath.SkipDir
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

// skipDir reports whether a directory below the walked root holds no
// messages to read: a hidden one (a Maildir++ root keeps its other
// folders, .Junk among them, as dot-directories, so learning ~/Maildir as
// ham must not take in .Junk; also .git, .notmuch and the like), or the
// tmp of a maildir, where deliveries are still being written.
func skipDir(path, name string) bool {
	if strings.HasPrefix(name, ".") {
		return true
	}
	if name != "tmp" {
		return false
	}
	parent := filepath.Dir(path)
	for _, sib := range []string{"cur", "new"} {
		if st, err := os.Stat(filepath.Join(parent, sib)); err == nil && st.IsDir() {
			return true
		}
	}
	return false
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
	return emit(path, f, fn)
}

// emit reads r as an mbox (streamed: an mbox is not bounded by
// MaxMessageBytes, each of its messages is) and calls fn with its messages,
// named name, or name#N when it holds more than one.
func emit(name string, r io.Reader, fn func(Message) error) error {
	n := 0
	var prev []byte
	err := splitMbox(r, MaxMessageBytes, func(msg, _ []byte) error {
		n++
		if n == 1 {
			prev = msg // named once it is known whether more follow
			return nil
		}
		if n == 2 {
			if err := fn(Message{Name: name + "#1", Data: prev}); err != nil {
				return err
			}
			prev = nil
		}
		return fn(Message{Name: fmt.Sprintf("%s#%d", name, n), Data: msg})
	})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if n == 1 {
		return fn(Message{Name: name, Data: prev})
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
		if h.Typeflag != tar.TypeReg || hiddenMember(h.Name) {
			continue
		}
		if err := emit(h.Name, tr, fn); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
}

// hiddenMember reports whether an archive member is a dot-file or lies
// in a dot-directory (as walkDir skips them; "./" prefixes are fine).
func hiddenMember(name string) bool {
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") && part != "." && part != ".." {
			return true
		}
	}
	return false
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// Problem says why data is not a mail message to learn or classify ("" when
// it is one): an empty file (a maildir's maildirfolder marker), or one whose
// first line (after an mbox "From " line) is not a header field, as with a
// README, a mail client's index (dovecot-uidlist, dovecot.index) or any
// binary file. Learning those would teach the filter noise under the
// label of the folder they happen to lie in.
func Problem(data []byte) string {
	if len(bytes.TrimSpace(data)) == 0 {
		return "empty"
	}
	if bytes.HasPrefix(data, []byte("From ")) {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return "empty"
		}
		data = data[i+1:]
	}
	if !headerLine(data) {
		return "not a mail message (no header)"
	}
	return ""
}

// headerLine reports whether data starts with a header field: a name of
// printable ASCII other than the colon, then (after optional blanks, as
// RFC 822 allowed) a colon. RFC 5322 2.2, 3.6.8.
func headerLine(data []byte) bool {
	i := 0
	for i < len(data) && data[i] > ' ' && data[i] < 0x7f && data[i] != ':' {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
		i++
	}
	return i < len(data) && data[i] == ':'
}
