package msgsrc

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

const (
	msgA = "From a@example.org Mon Nov  2 10:00:00 2026\nSubject: a\n\nbody a\n"
	msgB = "From b@example.org Tue Nov  3 10:00:00 2026\nSubject: b\n\nbody b\nFrom here on, a quoted line\n"
)

func TestSplitMbox(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"plain message", "Subject: x\n\nhi\n", []string{"Subject: x\n\nhi\n"}},
		{"one with From line", msgA, []string{msgA}},
		{"two", msgA + "\n" + msgB, []string{msgA, msgB}},
		{"body From line is not a separator", msgB + "\nFrom the desk of the CEO\n", []string{msgB + "\nFrom the desk of the CEO\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, m := range SplitMbox([]byte(tt.in)) {
				got = append(got, string(m))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func collect(t *testing.T, path string) map[string]string {
	t.Helper()
	got := map[string]string{}
	if err := Walk(path, func(m Message) error { got[m.Name] = string(m.Data); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestWalkSources(t *testing.T) {
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(md, "cur", "1.host:2,S"), "Subject: one\n\n1\n")
	write(filepath.Join(md, "new", "2.host"), "Subject: two\n\n2\n")
	write(filepath.Join(md, ".hidden"), "x")
	mbox := filepath.Join(dir, "box.mbox")
	write(mbox, msgA+"\n"+msgB)
	archive := filepath.Join(dir, "a.tar.gz")
	writeTarGz(t, archive, map[string]string{"set/spam/1": "Subject: t1\n\n1\n", "set/spam/2": msgA + "\n" + msgB})

	if got := collect(t, md); len(got) != 2 || got[filepath.Join(md, "new", "2.host")] == "" {
		t.Errorf("maildir: %v", got)
	}
	if got := collect(t, mbox); got[mbox+"#1"] != msgA || got[mbox+"#2"] != msgB {
		t.Errorf("mbox: %q", got)
	}
	got := collect(t, archive)
	want := map[string]string{"set/spam/1": "Subject: t1\n\n1\n", "set/spam/2#1": msgA, "set/spam/2#2": msgB}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tar.gz: %q", got)
	}
	if err := Walk(filepath.Join(dir, "missing"), func(Message) error { return nil }); err == nil {
		t.Error("missing path: no error")
	}
}

func writeTarGz(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, name := range []string{"set/spam/1", "set/spam/2"} {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// FuzzSplitMbox: the pieces of any input put back together with the
// empty lines dropped between them are the input (nothing lost, nothing
// invented), splitting never panics, and SplitMbox agrees with the stream.
func FuzzSplitMbox(f *testing.F) {
	f.Add([]byte(msgA + "\n" + msgB))
	f.Add([]byte("From \n\nFrom x Mon"))
	f.Add([]byte(crlf(msgA + "\n" + msgB)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var joined []byte
		n := 0
		err := splitMbox(bytes.NewReader(data), 0, func(msg, sep []byte) error {
			joined = append(append(joined, msg...), sep...)
			n++
			return nil
		})
		if err != nil || n == 0 {
			t.Fatalf("split: %d parts, %v", n, err)
		}
		if !bytes.Equal(joined, data) {
			t.Fatalf("split/join changed the input")
		}
		if got := len(SplitMbox(data)); got != n {
			t.Fatalf("SplitMbox: %d parts, stream %d", got, n)
		}
	})
}

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// An mbox written with CRLF line ends (copied off Windows, or written with
// the wire's line ends) is split as one with LF ends: before, its "\r\n\r\nFrom "
// was not seen, and the whole mbox was learned as a single message.
func TestSplitMboxCRLF(t *testing.T) {
	got := SplitMbox([]byte(crlf(msgA + "\n" + msgB)))
	want := [][]byte{[]byte(crlf(msgA)), []byte(crlf(msgB))}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// MaxMessageBytes bounds a message, not an mbox: before, only the first 32
// MiB of an mbox file were read and every message after was silently lost.
func TestWalkMboxLargerThanOneMessage(t *testing.T) {
	big := "From a@example.org Mon Nov  2 10:00:00 2026\nSubject: big\n\n" +
		strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", MaxMessageBytes/64+1024)
	path := filepath.Join(t.TempDir(), "big.mbox")
	if err := os.WriteFile(path, []byte(big+"\n"+msgA+"\n"+msgB), 0o644); err != nil {
		t.Fatal(err)
	}
	var names []string
	sizes := map[string]int{}
	err := Walk(path, func(m Message) error {
		names = append(names, m.Name)
		sizes[m.Name] = len(m.Data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{path + "#1", path + "#2", path + "#3"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("messages %q, want %q", names, want)
	}
	if sizes[path+"#1"] != MaxMessageBytes || sizes[path+"#3"] != len(msgB) {
		t.Errorf("sizes %v: the big one cut at %d, the last whole", sizes, MaxMessageBytes)
	}
}

// A Maildir++ root keeps its folders as dot-directories and delivers
// through tmp/: learning ~/Maildir as ham must take neither .Junk's spam
// nor half-written deliveries. A directory merely named tmp elsewhere is
// read.
func TestWalkMaildirSkipsFoldersAndTmp(t *testing.T) {
	md := filepath.Join(t.TempDir(), "Maildir")
	files := map[string]string{
		"cur/1.host:2,S":        "Subject: inbox\n\n1\n",
		"new/2.host":            "Subject: new\n\n2\n",
		"tmp/3.host":            "Subject: half writ",
		".Junk/cur/4.host:2,S":  "Subject: junk\n\n4\n",
		".Junk/maildirfolder":   "",
		"archive/tmp/5.eml":     "Subject: kept\n\n5\n",
		"archive/.hidden/6.eml": "Subject: hidden\n\n6\n",
	}
	for name, body := range files {
		p := filepath.Join(md, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for name := range collect(t, md) {
		rel, _ := filepath.Rel(md, name)
		got = append(got, rel)
	}
	sort.Strings(got)
	want := []string{"archive/tmp/5.eml", "cur/1.host:2,S", "new/2.host"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("walked %q, want %q", got, want)
	}
	// The folder itself, named on the command line, is read.
	if got := collect(t, filepath.Join(md, ".Junk", "cur")); len(got) != 1 {
		t.Errorf(".Junk/cur named: %v", got)
	}
}

// Archives: nested directories are read, non-regular members (directories,
// symlinks, devices) and hidden members (dot-files, dot-directories, a
// macOS ._ file) are not.
func TestWalkTarMembers(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(&tar.Header{Name: "./corpus/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./corpus/a/b/c/1.eml", Typeflag: tar.TypeReg, Mode: 0o644}, "Subject: deep\n\n1\n")
	add(&tar.Header{Name: "./corpus/link.eml", Typeflag: tar.TypeSymlink, Linkname: "a/b/c/1.eml"}, "")
	add(&tar.Header{Name: "./corpus/hard.eml", Typeflag: tar.TypeLink, Linkname: "./corpus/a/b/c/1.eml"}, "")
	add(&tar.Header{Name: "./corpus/fifo", Typeflag: tar.TypeFifo}, "")
	add(&tar.Header{Name: "./corpus/._1.eml", Typeflag: tar.TypeReg, Mode: 0o644}, "\x00\x05\x16\x07")
	add(&tar.Header{Name: "./corpus/.Junk/cur/2", Typeflag: tar.TypeReg, Mode: 0o644}, "Subject: junk\n\n2\n")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.tgz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got := collect(t, path)
	want := map[string]string{"./corpus/a/b/c/1.eml": "Subject: deep\n\n1\n"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestProblem(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"message", "Subject: x\n\nhi\n", ""},
		{"CRLF message", "Received: from a\r\n\tby b\r\n\r\nhi\r\n", ""},
		{"mbox From line", msgA, ""},
		{"old-style blank before colon", "Subject : x\n\nhi\n", ""},
		{"empty", "", "empty"},
		{"blank lines", "\n\r\n \n", "empty"},
		{"From line only", "From a@example.org Mon Nov  2 10:00:00 2026", "empty"},
		{"README", "This folder holds the spam we kept.\n", "not a mail message (no header)"},
		{"dovecot-uidlist", "3 V1700000000 N5 G0123456789abcdef\n1 :1.host\n", "not a mail message (no header)"},
		{"binary", "\x00\x01\x02\x03index", "not a mail message (no header)"},
		{"body without header", "\nhello\n", "not a mail message (no header)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Problem([]byte(tt.data)); got != tt.want {
				t.Errorf("Problem(%q) = %q, want %q", tt.data, got, tt.want)
			}
		})
	}
}
