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
