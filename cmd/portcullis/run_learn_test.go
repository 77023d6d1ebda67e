package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/sdk"
)

// TestLearnerDamagedStateFile: learn_spam/learn_ham run the Bayes store in
// the daemon's own process, over a memory-mapped bbolt file. A damaged
// file (here truncated) made bbolt panic or fault there and took the whole
// gateway down at the first learn event; now the event fails with an
// error that names the cause, learning stops until a reload, and the
// process goes on.
func TestLearnerDamagedStateFile(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(cfgPath, []byte("hostname: gw.test\nlisteners: [{name: a, address: '127.0.0.1:2525'}]\n"+
		"state: {path: state.db}\n"+learnRules), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncLog{}
	newLearner := func() *learner {
		return &learner{config: func() *config.Config { return cfg }, log: slog.New(slog.NewTextHandler(logs, nil))}
	}
	learn := func(l *learner, i int) {
		var words []string
		for j := range 200 {
			words = append(words, fmt.Sprintf("w%dx%d", i, j))
		}
		raw := []byte(learnMsg("[learn-spam]", strings.Join(words, " "), i))
		l.learn(context.Background(), i%2 == 0, fmt.Sprint("Q", i), func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(raw)), nil
		})
	}
	l := newLearner()
	for i := range 300 {
		learn(l, i)
	}
	l.close()
	if strings.Contains(logs.String(), "learning failed") {
		t.Fatalf("learning an intact file failed:\n%s", logs.String())
	}
	path := sdk.StageStatePath(cfg.State.Path, "bayes")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()/3); err != nil {
		t.Fatal(err)
	}
	l = newLearner()
	for i := range 300 {
		learn(l, i)
		if strings.Contains(logs.String(), "learning failed") {
			break
		}
	}
	defer l.close()
	if !strings.Contains(logs.String(), "the Bayes state file may be damaged") &&
		!strings.Contains(logs.String(), "learning failed") {
		t.Fatalf("learning from a file truncated to %d of %d bytes did not fail:\n%.3000s", fi.Size()/3, fi.Size(), logs.String())
	}
	t.Logf("%d-byte file cut to %d: %s", fi.Size(), fi.Size()/3, firstLine(logs.String(), "learning failed"))
}

func firstLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
