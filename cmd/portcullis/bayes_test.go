package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bayesFixture is a config with a bayes stage entry and two folders of
// messages on distinct topics.
type bayesFixture struct {
	cfg, spam, ham string
}

func bayesMsg(i int, spam bool) string {
	words := "kernel patch build review merge release branch linker toolchain"
	if spam {
		words = "cash winner free offer casino prize million urgent claim"
	}
	w := strings.Fields(words)
	var b strings.Builder
	for j := 0; j < 30; j++ {
		b.WriteString(w[(i*5+j*2)%len(w)] + " ")
	}
	return fmt.Sprintf("From: u%d@example.org\nSubject: %s %d\nMessage-ID: <%d.%v@example.org>\n\n%s\n", i, w[i%len(w)], i, i, spam, b.String())
}

func newBayesFixture(t *testing.T) *bayesFixture {
	t.Helper()
	dir := t.TempDir()
	f := &bayesFixture{cfg: filepath.Join(dir, "portcullis.yaml"), spam: filepath.Join(dir, "spam"), ham: filepath.Join(dir, "ham")}
	conf := "hostname: mx.example.test\nlisteners: [{name: mx, address: '127.0.0.1:2525'}]\n" +
		"queue: {dir: spool}\nstate: {path: state.db}\n" +
		"stages:\n  - name: bayes\n    plugin: bayes\n    config: {min_spam: 3, min_ham: 3, spam_cutoff: 0.9, ham_cutoff: 0.1}\n"
	if err := os.WriteFile(f.cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{f.spam, f.ham} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 6; i++ {
		write(t, filepath.Join(f.spam, fmt.Sprint(i)), bayesMsg(i, true))
		write(t, filepath.Join(f.ham, fmt.Sprint(i)), bayesMsg(i, false))
	}
	return f
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runBayesCmd(args ...string) (int, string, string) {
	var out, errs bytes.Buffer
	code := dispatch(append([]string{"bayes"}, args...), &out, &errs)
	return code, out.String(), errs.String()
}

func TestBayesLearnClassifyStats(t *testing.T) {
	f := newBayesFixture(t)
	code, out, errs := runBayesCmd("learn", "--spam", f.spam, "--ham", f.ham, "-c", f.cfg)
	if code != 0 || !strings.Contains(out, "learned 12 messages") || !strings.Contains(out, "spam: 6 added") {
		t.Fatalf("learn: %d %q %q", code, out, errs)
	}
	if errs != "" {
		t.Errorf("progress or noise on a non-terminal stderr: %q", errs)
	}
	// Learning the same folders again counts nothing twice.
	if _, out, _ := runBayesCmd("learn", "--spam", f.spam, "--ham", f.ham, "-c", f.cfg); !strings.Contains(out, "spam: 0 added, 0 moved from the other class, 6 already known") {
		t.Errorf("relearn: %q", out)
	}
	newSpam := filepath.Join(t.TempDir(), "new.eml")
	write(t, newSpam, bayesMsg(40, true))
	code, out, _ = runBayesCmd("classify", newSpam, "-c", f.cfg)
	fields := strings.Split(strings.TrimSpace(out), "\t")
	if code != 0 || len(fields) != 3 || fields[0] != newSpam || fields[2] != "fail" {
		t.Errorf("classify: %d %q", code, out)
	}
	code, out, _ = runBayesCmd("stats", "-c", f.cfg)
	for _, want := range []string{"spam learned:    6", "ham learned:     6", "message hashes:  12", "state.bayes.db", "gives verdicts:  yes", "spam >= 0.9", "4-gram model:    learned 6 spam and 6 ham; its logit is added to Fisher's with weight 3"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("stats lacks %q:\n%s", want, out)
		}
	}
	// A spam learned as ham moves.
	one := filepath.Join(f.spam, "0")
	if _, out, _ := runBayesCmd("learn", "--ham", one, "-c", f.cfg); !strings.Contains(out, "ham : 0 added, 1 moved") {
		t.Errorf("move: %q", out)
	}
	if _, out, _ := runBayesCmd("stats", "-c", f.cfg); !strings.Contains(out, "spam learned:    5") || !strings.Contains(out, "ham learned:     7") {
		t.Errorf("after move:\n%s", out)
	}
}

func TestBayesLearnHamHook(t *testing.T) {
	f := newBayesFixture(t)
	cfg, err := loadConfig(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if learnHamHook == nil {
		t.Fatal("bayes did not set learnHamHook")
	}
	if err := learnHamHook(cfg, filepath.Join(f.spam, "1")); err != nil {
		t.Fatal(err)
	}
	if _, out, _ := runBayesCmd("stats", "-c", f.cfg); !strings.Contains(out, "ham learned:     1") {
		t.Errorf("after --learn-ham hook:\n%s", out)
	}
}

func TestBayesUsage(t *testing.T) {
	for _, args := range [][]string{
		{}, {"frobnicate"}, {"learn"}, {"learn", "stray"}, {"classify"}, {"stats", "x"}, {"learn", "--spam", "a", "--bogus"},
	} {
		if code, _, _ := runBayesCmd(args...); code != exitUsage {
			t.Errorf("bayes %q: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code, _, _ := runBayesCmd("classify", "/nonexistent/x", "-c", newBayesFixture(t).cfg); code != exitFailed {
		t.Errorf("missing path: exit %d, want 1", code)
	}
}
