package bayes

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/plugins/bayes/msgsrc"
	"github.com/portcullis-mta/portcullis/sdk"
)

// The evaluation on the shared corpus (../shared/corpus beside the repo):
// train on train.tar.gz, classify test.tar.gz, print FP rate (ham called
// spam), FN rate (spam let through) and accuracy at the default
// spam_cutoff, and fail below what this filter reached when it was
// committed, so that a regression breaks the build. Run:
//
//	go test -run 'TestEval' -v ./plugins/bayes
//
// TestEvalBogofilter measures bogofilter on the same split in the same run.

// Regression floor at the default cutoff on the TEST split: what this
// filter reached when committed (FP 2, FN 5, 98.86%; before the shared
// address prefix and header-order tokens of issue 7: FP 2, FN 6, 98.69%),
// the configuration having been chosen by cross-validation on TRAIN alone
// (TestCrossValidation guards those figures: FP 0.20%, FN 1.53%, 99.39%).
// TEST is small: one ham is 0.24%, one spam 0.52%. The project target
// (FP <= 1, FN <= 3, accuracy >= 99.3% on TEST) is not reached on this
// split.
const (
	evalMaxFP  = 2    // of 419 ham
	evalMaxFN  = 6    // of 193 spam
	evalMinAcc = 98.5 // percent
)

// corpusDir finds shared/corpus beside the repository root (the directory
// with go.mod), walking up from the test's working directory.
func corpusDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			c := filepath.Join(dir, "..", "shared", "corpus")
			if _, err := os.Stat(filepath.Join(c, "train.tar.gz")); err != nil {
				t.Fatalf("corpus not found at %s (expected shared/corpus beside the repository): %v", c, err)
			}
			return c
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

type labelled struct {
	name string
	spam bool
	raw  []byte
}

func loadCorpus(t testing.TB, file string) []labelled {
	t.Helper()
	var out []labelled
	err := msgsrc.Walk(filepath.Join(corpusDir(t), file), func(m msgsrc.Message) error {
		out = append(out, labelled{m.Name, strings.Contains(m.Name, "/spam/"), m.Data})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// metrics are the figures at one cutoff.
type metrics struct {
	ham, spam, fp, fn int
}

func (m metrics) String() string {
	return fmt.Sprintf("FP %d/%d = %.2f%%  FN %d/%d = %.2f%%  accuracy %.2f%%",
		m.fp, m.ham, 100*float64(m.fp)/float64(m.ham), m.fn, m.spam, 100*float64(m.fn)/float64(m.spam),
		m.accuracy())
}

func (m metrics) accuracy() float64 {
	n := m.ham + m.spam
	return 100 * float64(n-m.fp-m.fn) / float64(n)
}

func measure(set []labelled, scores []float64, cutoff float64) metrics {
	var m metrics
	for i, s := range set {
		isSpam := scores[i] >= cutoff
		if s.spam {
			m.spam++
			if !isSpam {
				m.fn++
			}
		} else {
			m.ham++
			if isSpam {
				m.fp++
			}
		}
	}
	return m
}

// trainStage learns set into a fresh stage the way `portcullis bayes learn` does.
func trainStage(t testing.TB, set []labelled) (*Stage, TrainSummary, time.Duration) {
	t.Helper()
	st := NewStage()
	env := sdk.Env{StageName: "bayes", StatePath: filepath.Join(t.TempDir(), "state.bayes.db")}
	if err := st.Configure(context.Background(), env, nil); err != nil {
		t.Fatal(err)
	}
	st.store.(*BoltStore).noSync = true // the corpus is not worth an fsync per batch
	start := time.Now()
	tr := NewTrainer(st)
	for _, m := range set {
		if err := tr.Add(context.Background(), m.raw, m.spam); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := tr.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st, sum, time.Since(start)
}

func TestEvalCorpus(t *testing.T) {
	train, test := loadCorpus(t, "train.tar.gz"), loadCorpus(t, "test.tar.gz")
	st, sum, took := trainStage(t, train)
	defer st.Close()
	t.Logf("trained %d messages in %v, %d reinforcements in %d rounds", len(train), took.Round(time.Millisecond), sum.Reinforced, sum.Rounds)
	scores := make([]float64, len(test))
	start := time.Now()
	for i, m := range test {
		c, err := st.Classify(context.Background(), m.raw)
		if err != nil {
			t.Fatal(err)
		}
		scores[i] = c.Score
	}
	t.Logf("classified %d messages in %v", len(test), time.Since(start).Round(time.Millisecond))
	// The classifying view leaves out tokens Score would ignore: every
	// score must equal the one from the full counts, blended with the
	// gram model as stored.
	totals, _ := st.store.Totals(context.Background())
	grams, gramN, err := st.store.(GramStore).Grams(context.Background())
	if err != nil || grams == nil || gramN != (Totals{Spam: 1307, Ham: 2948}) {
		t.Fatalf("gram model after training: untrained %v, counts %+v, %v", grams == nil, gramN, err)
	}
	cfg := st.Config()
	for i, m := range test {
		keys := st.keys(m.raw)
		full := make([]Count, len(keys))
		if err := st.store.Lookup(context.Background(), keys, full); err != nil {
			t.Fatal(err)
		}
		s, _ := st.params.Score(full, totals.Spam, totals.Ham)
		if s = blend(s, grams.logit(gramFeatures(m.raw, nil)), cfg.GramWeight); s != scores[i] {
			t.Fatalf("%s: %v through the classifying view, %v from the full counts", m.name, scores[i], s)
		}
	}
	for _, cut := range []float64{0.5, cfg.SpamCutoff} {
		t.Logf("portcullis cutoff %-5g %s", cut, measure(test, scores, cut))
	}
	for i, m := range test {
		if m.spam != (scores[i] >= cfg.SpamCutoff) {
			t.Logf("  wrong: %s %.4f", m.name, scores[i])
		}
	}
	m := measure(test, scores, cfg.SpamCutoff)
	if m.fp > evalMaxFP || m.fn > evalMaxFN || m.accuracy() < evalMinAcc {
		t.Errorf("regression at spam_cutoff %g: %s; floor FP <= %d, FN <= %d, accuracy >= %.2f%%",
			cfg.SpamCutoff, m, evalMaxFP, evalMaxFN, evalMinAcc)
	}
}

// TestEvalBogofilter trains and classifies the same split with bogofilter
// in the same run, for the comparison in the README. bogofilter must be
// installed (apt-get install bogofilter); the test fails if it is not.
func TestEvalBogofilter(t *testing.T) {
	bin, err := exec.LookPath("bogofilter")
	if err != nil {
		t.Fatal("bogofilter not installed (apt-get install bogofilter): cannot measure the baseline")
	}
	dir := t.TempDir()
	write := func(set []labelled) (spam, ham, all []string) {
		for _, m := range set {
			p := filepath.Join(dir, filepath.FromSlash(m.name)) // train/... and test/... apart
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, m.raw, 0o644); err != nil {
				t.Fatal(err)
			}
			all = append(all, p)
			if m.spam {
				spam = append(spam, p)
			} else {
				ham = append(ham, p)
			}
		}
		return spam, ham, all
	}
	train, test := loadCorpus(t, "train.tar.gz"), loadCorpus(t, "test.tar.gz")
	spam, ham, _ := write(train)
	_, _, testFiles := write(test)
	db := filepath.Join(dir, "db")
	if err := os.Mkdir(db, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	run := func(args ...string) []byte {
		out, err := exec.Command(bin, append([]string{"-d", db}, args...)...).Output()
		if err != nil {
			t.Fatalf("bogofilter %v: %v", args[:2], err)
		}
		return out
	}
	run(append([]string{"-s", "-B"}, spam...)...)
	run(append([]string{"-n", "-B"}, ham...)...)
	t.Logf("bogofilter trained %d messages in %v", len(train), time.Since(start).Round(time.Millisecond))
	start = time.Now()
	out := run(append([]string{"-T", "-B"}, testFiles...)...)
	t.Logf("bogofilter classified %d messages in %v", len(test), time.Since(start).Round(time.Millisecond))
	scores := make([]float64, len(test))
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(test) {
		t.Fatalf("bogofilter printed %d lines for %d messages", len(lines), len(test))
	}
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != testFiles[i] {
			t.Fatalf("bogofilter output line %q", l)
		}
		if scores[i], err = strconv.ParseFloat(f[2], 64); err != nil {
			t.Fatal(err)
		}
	}
	for _, cut := range []float64{0.5, 0.99} {
		t.Logf("bogofilter cutoff %-5g %s", cut, measure(test, scores, cut))
	}
}
