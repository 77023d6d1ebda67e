package bayes

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/mime"
)

// Benchmarks on the corpus: go test -run '^$' -bench . -benchtime 2000x ./plugins/bayes
//
// BenchmarkClassify is the stage's work per message (MIME walk, tokenize,
// look up, combine); BenchmarkMIMEWalk is the shared MIME walk alone, its
// baseline in the same run; BenchmarkBogofilterClassify runs bogofilter on
// the same messages. Each reports msgs/s.

var bench struct {
	once  sync.Once
	st    *Stage
	test  []labelled
	train []labelled
	dir   string
}

// TestMain removes the benchmarks' trained store (some 50 MB) when the
// run ends.
func TestMain(m *testing.M) {
	code := m.Run()
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

func benchSetup(b *testing.B) {
	b.Helper()
	bench.once.Do(func() {
		bench.train, bench.test = loadCorpus(b, "train.tar.gz"), loadCorpus(b, "test.tar.gz")
		dir, err := os.MkdirTemp("", "bayes-bench")
		if err != nil {
			b.Fatal(err)
		}
		bench.dir = dir
		st := NewStage()
		if err := st.Configure(context.Background(), envAt(filepath.Join(dir, "state.bayes.db")), nil); err != nil {
			b.Fatal(err)
		}
		tr := NewTrainer(st)
		for _, m := range bench.train {
			if err := tr.Add(context.Background(), m.raw, m.spam); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := tr.Finish(context.Background()); err != nil {
			b.Fatal(err)
		}
		// Classify as the daemon does after `portcullis bayes learn`: a
		// stage of its own on the trained file.
		st.Close()
		st = NewStage()
		if err := st.Configure(context.Background(), envAt(filepath.Join(dir, "state.bayes.db")), nil); err != nil {
			b.Fatal(err)
		}
		bench.st = st
	})
	if bench.st == nil {
		b.Fatal("setup failed")
	}
}

func envAt(path string) sdk.Env { return sdk.Env{StageName: "bayes", StatePath: path} }

// BenchmarkClassify classifies the TEST messages with the store trained
// on TRAIN; the baseline in the same run, gram_weight 0, is Fisher alone
// (run first, so that neither has the warmer start).
func BenchmarkClassify(b *testing.B) {
	benchSetup(b)
	st := NewStage()
	path := bench.st.Store().(*BoltStore).Path()
	if err := st.Configure(context.Background(), envAt(path), map[string]any{"gram_weight": 0}); err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.Run("gram_weight=0", func(b *testing.B) { benchClassify(b, st) })
	b.Run("gram_weight=3", func(b *testing.B) { benchClassify(b, bench.st) })
}

func benchClassify(b *testing.B, st *Stage) {
	ctx := context.Background()
	if _, err := st.Classify(ctx, bench.test[0].raw); err != nil { // load the snapshot
		b.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fi, _ := os.Stat(st.Store().(*BoltStore).Path())
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := st.Classify(ctx, bench.test[i%len(bench.test)].raw); err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b, cpu0)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(fi.Size())/(1<<20), "store-MiB")
}

func BenchmarkMIMEWalk(b *testing.B) {
	benchSetup(b)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		mime.ParseBytes(bench.test[i%len(bench.test)].raw, mime.DefaultLimits())
	}
	reportRates(b, cpu0)
}

// BenchmarkLearn is the training rate: batches of 500 into a fresh bbolt
// file (with fsync), without the train-on-error rounds.
func BenchmarkLearn(b *testing.B) {
	benchSetup(b)
	st := NewStage()
	if err := st.Configure(context.Background(), envAt(filepath.Join(b.TempDir(), "s.db")), nil); err != nil {
		b.Fatal(err)
	}
	tr := NewTrainer(st)
	tr.Rounds = 0
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		m := bench.train[i%len(bench.train)]
		if err := tr.Add(context.Background(), m.raw, m.spam); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := tr.Finish(context.Background()); err != nil {
		b.Fatal(err)
	}
	reportRates(b, cpu0)
}

// BenchmarkLearnOne is learning one message at a time, as a rule's
// learn_spam or `quarantine release --learn-ham` does: its tokens in one
// transaction, then one step of the gram model (1 MiB of weights read and
// written) in another, each with fsync.
// The baseline, gram_weight 0, learns the tokens alone.
func BenchmarkLearnOne(b *testing.B) {
	benchSetup(b)
	for _, gw := range []float64{DefaultConfig().GramWeight, 0} {
		b.Run(fmt.Sprintf("gram_weight=%g", gw), func(b *testing.B) {
			st := NewStage()
			cfg := map[string]any{"max_tokens": 0, "gram_weight": gw}
			if err := st.Configure(context.Background(), envAt(filepath.Join(b.TempDir(), "s.db")), cfg); err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				m := bench.train[i%len(bench.train)]
				if _, err := st.LearnRaw(context.Background(), m.raw, m.spam); err != nil {
					b.Fatal(err)
				}
			}
			reportRates(b, cpu0)
		})
	}
}

// BenchmarkBogofilterClassify classifies the TEST messages with one
// bogofilter process per 612 (bulk mode, -B), trained on the same split.
func BenchmarkBogofilterClassify(b *testing.B) {
	benchSetup(b)
	bin, err := exec.LookPath("bogofilter")
	if err != nil {
		b.Fatal("bogofilter not installed (apt-get install bogofilter)")
	}
	dir := b.TempDir()
	files := func(set []labelled, spam bool) []string {
		var out []string
		for _, m := range set {
			if m.spam != spam {
				continue
			}
			p := filepath.Join(dir, filepath.FromSlash(m.name))
			_ = os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, m.raw, 0o644); err != nil {
				b.Fatal(err)
			}
			out = append(out, p)
		}
		return out
	}
	db := filepath.Join(dir, "db")
	_ = os.Mkdir(db, 0o755)
	for _, args := range [][]string{append([]string{"-s", "-B"}, files(bench.train, true)...), append([]string{"-n", "-B"}, files(bench.train, false)...)} {
		if out, err := exec.Command(bin, append([]string{"-d", db}, args...)...).CombinedOutput(); err != nil {
			b.Fatalf("bogofilter: %v %s", err, out)
		}
	}
	test := append(files(bench.test, true), files(bench.test, false)...)
	b.ResetTimer()
	n := 0
	var cpu time.Duration
	for n < b.N {
		// Exit status 0, 1 or 2 is the last message's class (spam, ham, unsure); 3 is an error.
		cmd := exec.Command(bin, append([]string{"-d", db, "-T", "-B"}, test...)...)
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() > 2) {
			b.Fatal(err)
		}
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		n += len(test)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(n)/cpu.Seconds(), "msgs/cpu-s")
}

// cpuTime is the process's user+system CPU time. On a shared machine the
// wall clock also counts time spent waiting for a core; msgs/cpu-s is the
// rate one core would sustain.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportRates(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "msgs/cpu-s")
	}
}

// BenchmarkGramLogit is the gram model's share of classifying: the
// features of a TEST message and the sum of their weights.
func BenchmarkGramLogit(b *testing.B) {
	benchSetup(b)
	w, _, err := bench.st.Store().(GramStore).Grams(context.Background())
	if err != nil || w == nil {
		b.Fatal("no gram model", err)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	var z float64
	for i := 0; i < b.N; i++ {
		z += w.logitOf(bench.test[i%len(bench.test)].raw)
	}
	reportRates(b, cpu0)
	_ = z
}
