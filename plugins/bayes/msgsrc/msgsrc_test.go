package msgsrc

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"reflect"
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

// FuzzSplitMbox: the pieces of any input put back together are the input
// (nothing lost, nothing invented), and splitting never panics.
func FuzzSplitMbox(f *testing.F) {
	f.Add([]byte(msgA + "\n" + msgB))
	f.Add([]byte("From \n\nFrom x Mon"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parts := SplitMbox(data)
		if len(parts) == 0 {
			t.Fatal("no parts")
		}
		var joined []byte
		for i, p := range parts {
			if i > 0 {
				joined = append(joined, '\n')
			}
			joined = append(joined, p...)
		}
		if !bytes.Equal(joined, data) {
			t.Fatalf("split/join changed the input")
		}
	})
}
