package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
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
	if code != 0 || !strings.Contains(out, "read 12 messages") || !strings.Contains(out, "spam: 6 added") {
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
	learn, done, err := learnHamHook(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if err := learn(filepath.Join(f.spam, "1")); err != nil {
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

// A PATH that is not there fails the command before anything is learned:
// before, the 500 messages of the first path were already in the store
// (one batch, without train-on-error rounds or the gram model) when the
// typo in the second stopped it.
func TestBayesLearnMissingPathLearnsNothing(t *testing.T) {
	f := newBayesFixture(t)
	for i := 6; i < 501; i++ {
		write(t, filepath.Join(f.spam, fmt.Sprint(i)), bayesMsg(i, true))
	}
	missing := filepath.Join(t.TempDir(), "Maildir", ".Hma")
	code, out, errs := runBayesCmd("learn", "--spam", f.spam, "--ham", missing, "-c", f.cfg)
	if code != exitFailed || !strings.Contains(errs, missing+": no such file or directory") {
		t.Errorf("learn with a missing path: exit %d, stderr %q, want 1 naming it", code, errs)
	}
	if out != "" {
		t.Errorf("stdout %q", out)
	}
	if _, out, _ := runBayesCmd("stats", "-c", f.cfg); !strings.Contains(out, "spam learned:    0 ") || !strings.Contains(out, "last learned:    never") {
		t.Errorf("the store was written:\n%s", out)
	}
	// Bad usage is 2, whether the paths exist or not.
	if code, _, _ := runBayesCmd("learn", missing, "-c", f.cfg); code != exitUsage {
		t.Errorf("learn PATH without --spam/--ham: exit %d, want 2", code)
	}
}

// Files that are not messages (a README, a maildir's maildirfolder marker,
// dovecot's index files) are not learned under the folder's label; the
// summary says how many and why, naming one.
func TestBayesLearnSkipsNonMail(t *testing.T) {
	f := newBayesFixture(t)
	write(t, filepath.Join(f.spam, "README"), "Spam we caught in 2026.\n")
	write(t, filepath.Join(f.spam, "maildirfolder"), "")
	write(t, filepath.Join(f.spam, "dovecot-uidlist"), "3 V1700000000 N7 G0123\n1 :0\n")
	code, out, errs := runBayesCmd("learn", "--spam", f.spam, "--ham", f.ham, "-c", f.cfg)
	if code != 0 {
		t.Fatalf("learn: %d %q %q", code, out, errs)
	}
	for _, want := range []string{
		"read 12 messages",
		"spam: 6 added",
		"skipped: 3 not learned: 2 not a mail message (no header) (as " + filepath.Join(f.spam, "README") + "), 1 empty (as " + filepath.Join(f.spam, "maildirfolder") + ")",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// classify: every stdout line is NAME<TAB>SCORE<TAB>VERDICT, NAME the
// archive member for a .tar.gz, quoted when the file name itself holds a
// tab; a file that is not a message is named on stderr, not scored.
func TestBayesClassifyLines(t *testing.T) {
	f := newBayesFixture(t)
	if code, out, errs := runBayesCmd("learn", "--spam", f.spam, "--ham", f.ham, "-c", f.cfg); code != 0 {
		t.Fatalf("learn: %d %q %q", code, out, errs)
	}
	dir := t.TempDir()
	tabbed := filepath.Join(dir, "odd\tname.eml")
	write(t, tabbed, bayesMsg(41, true))
	write(t, filepath.Join(dir, "notes.txt"), "not mail\n")
	archive := filepath.Join(dir, "set.tar.gz")
	writeTarGz(t, archive, "inbox/cur/1.eml", bayesMsg(42, false))
	code, out, errs := runBayesCmd("classify", filepath.Join(dir, "notes.txt"), tabbed, archive, "-c", f.cfg)
	if code != 0 {
		t.Fatalf("classify: %d %q %q", code, out, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	wantNames := []string{strconv.Quote(tabbed), "inbox/cur/1.eml"}
	if len(lines) != len(wantNames) {
		t.Fatalf("stdout lines %q, want %d", lines, len(wantNames))
	}
	for i, line := range lines {
		fields := strings.Split(line, "\t")
		if len(fields) != 3 || fields[0] != wantNames[i] {
			t.Errorf("line %q: want NAME %q and 3 fields", line, wantNames[i])
			continue
		}
		if _, err := strconv.ParseFloat(fields[1], 64); err != nil || !slices.Contains([]string{"pass", "fail", "neutral"}, fields[2]) {
			t.Errorf("line %q: score or verdict malformed", line)
		}
	}
	if !strings.Contains(errs, "notes.txt skipped: not a mail message") {
		t.Errorf("stderr %q: the non-message not named", errs)
	}
}

// With state.redis set, stats says that this stage does not use it.
func TestBayesStatsRedisNotUsed(t *testing.T) {
	f := newBayesFixture(t)
	conf, err := os.ReadFile(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	write(t, f.cfg, strings.Replace(string(conf), "state: {path: state.db}", "state: {path: state.db, redis: 'redis://127.0.0.1:6379/0'}", 1))
	code, out, errs := runBayesCmd("stats", "-c", f.cfg)
	if code != 0 || !strings.Contains(out, "state.redis:     not used by this stage") {
		t.Errorf("stats: %d %q %q", code, out, errs)
	}
}

func writeTarGz(t *testing.T, path, name, body string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	write(t, path, buf.String())
}

// TestBayesOldHashesSaid: a store whose message hashes have another form
// (its mark says so) does not recognise its messages again; stats and
// learn say so and how to rebuild it, instead of counting them twice
// unnoticed.
func TestBayesOldHashesSaid(t *testing.T) {
	f := newBayesFixture(t)
	if code, out, errs := runBayesCmd("learn", "--spam", f.spam, "--ham", f.ham, "-c", f.cfg); code != 0 {
		t.Fatalf("learn: %d %q %q", code, out, errs)
	}
	store := filepath.Join(filepath.Dir(f.cfg), "state.bayes.db")
	db, err := bolt.Open(store, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("hash"), []byte{1}) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	note := "of another form, an older build's: a message learned again is counted twice"
	if _, out, _ := runBayesCmd("stats", "-c", f.cfg); !strings.Contains(out, "message hashes:  12 ("+note) || !strings.Contains(out, "remove "+store) {
		t.Errorf("stats:\n%s", out)
	}
	if code, _, errs := runBayesCmd("learn", "--spam", f.spam, "-c", f.cfg); code != 0 || !strings.Contains(errs, "warning: message hashes ("+note) {
		t.Errorf("learn: %d %q", code, errs)
	}
}
