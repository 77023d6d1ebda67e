package watchfile

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

// parse reads the file as one word; "bad" is a parse error.
func parse(p string) (*string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSpace(string(b))
	if s == "bad" {
		return nil, errors.New("bad content")
	}
	return &s, nil
}

func TestReloadOnChangeKeepOldOnError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	write := func(s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("one")
	f, err := Load(p, "test file", parse, func(s *string) []any { return []any{"value", *s} })
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	f.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	c := &clock{time.Unix(1_800_000_000, 0)}
	f.SetClock(c.Now)

	write("three")
	if got := *f.Get(); got != "one" {
		t.Fatalf("changed before the recheck interval: %q", got)
	}
	c.t = c.t.Add(RecheckEvery)
	if got := *f.Get(); got != "three" {
		t.Fatalf("after the interval: %q, want three", got)
	}
	if !strings.Contains(logs.String(), `msg="test file reloaded"`) || !strings.Contains(logs.String(), "value=three") {
		t.Fatalf("reload log: %s", logs.String())
	}
	write("bad")
	for i := 0; i < 3; i++ {
		c.t = c.t.Add(RecheckEvery)
		if got := *f.Get(); got != "three" {
			t.Fatalf("a bad file replaced the value: %q", got)
		}
	}
	if n := strings.Count(logs.String(), "reload failed"); n != 1 {
		t.Fatalf("failure logged %d times, want once: %s", n, logs.String())
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing"), "x", parse, nil); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

// TestReloadOnReplace: editors that save by writing a new file and renaming
// it over the old one (vim, sed -i), and Kubernetes, which swaps a ConfigMap
// volume's ..data symlink to a new directory, replace the file rather than
// write to it. The replacement can have the old size and modification time
// (the same line edited within one timestamp tick, cp -p, rsync -t); it must
// still be read.
func TestReloadOnReplace(t *testing.T) {
	sameStamp := func(t *testing.T, p string, mt time.Time) {
		t.Helper()
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string              // returns the watched path
		replace func(t *testing.T, dir, path string, mt time.Time) // installs "two"
	}{
		{"rename over", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "users.txt")
			if err := os.WriteFile(p, []byte("one"), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, func(t *testing.T, dir, p string, mt time.Time) {
			tmp := filepath.Join(dir, ".users.txt.swp")
			if err := os.WriteFile(tmp, []byte("two"), 0o600); err != nil {
				t.Fatal(err)
			}
			sameStamp(t, tmp, mt)
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
		}},
		{"configmap ..data swap", func(t *testing.T, dir string) string {
			for _, v := range []string{"v1", "v2"} {
				if err := os.Mkdir(filepath.Join(dir, v), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "v1", "users.txt"), []byte("one"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("v1", filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "users.txt")
			if err := os.Symlink(filepath.Join("..data", "users.txt"), p); err != nil {
				t.Fatal(err)
			}
			return p
		}, func(t *testing.T, dir, p string, mt time.Time) {
			n := filepath.Join(dir, "v2", "users.txt")
			if err := os.WriteFile(n, []byte("two"), 0o600); err != nil {
				t.Fatal(err)
			}
			sameStamp(t, n, mt)
			if err := os.Symlink("v2", filepath.Join(dir, "..data_tmp")); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := tt.setup(t, dir)
			mt := time.Now().Add(-time.Hour).Truncate(time.Second)
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				t.Fatal(err)
			}
			sameStamp(t, real, mt)
			f, err := Load(p, "test file", parse, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := &clock{time.Unix(1_800_000_000, 0)}
			f.SetClock(c.Now)
			tt.replace(t, dir, p, mt)
			c.t = c.t.Add(RecheckEvery)
			if got := *f.Get(); got != "two" {
				t.Fatalf("after the file was replaced: %q, want two", got)
			}
		})
	}
}

// TestChangeDuringRead: a file written while it is read (os.WriteFile and
// "cat >" truncate first) must not leave the part that was read in force
// (an empty recipients file rejects every address): it is read again.
func TestChangeDuringRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	writing := false
	f, err := Load(p, "test file", func(path string) (*string, error) {
		v, err := parse(path)
		if err == nil && writing && *v == "" {
			// The writer finishes while the empty file is parsed.
			writing = false
			if err := os.WriteFile(p, []byte("complete"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return v, err
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{time.Unix(1_800_000_000, 0)}
	f.SetClock(c.Now)
	if err := os.WriteFile(p, nil, 0o600); err != nil { // truncated, not yet written
		t.Fatal(err)
	}
	writing = true
	c.t = c.t.Add(RecheckEvery)
	if got := *f.Get(); got != "complete" {
		t.Fatalf("got %q, want the completed file", got)
	}
}
