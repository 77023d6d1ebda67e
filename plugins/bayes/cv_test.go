package bayes

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// memStore is an in-memory Store for cross-validation: the folds are
// trained and thrown away many times, which a bbolt file would slow down.
type memStore struct {
	counts map[Key]Count
	totals Totals
	grams  Weights
	gramN  Totals
}

func (m *memStore) Grams(context.Context) (Weights, Totals, error) { return m.grams, m.gramN, nil }
func (m *memStore) LearnGrams(_ context.Context, spam, ham int, fn func(Weights)) error {
	if m.grams == nil {
		m.grams = make(Weights, gramTable)
	}
	fn(m.grams)
	m.gramN.Spam, m.gramN.Ham = addClamp(m.gramN.Spam, spam), addClamp(m.gramN.Ham, ham)
	return nil
}

func newMemStore() *memStore { return &memStore{counts: map[Key]Count{}} }

func (m *memStore) Totals(context.Context) (Totals, error) { return m.totals, nil }
func (m *memStore) Lookup(_ context.Context, keys []Key, out []Count) error {
	for i, k := range keys {
		out[i] = m.counts[k]
	}
	return nil
}

// Learn counts every message (the folds hold no duplicates).
func (m *memStore) Learn(_ context.Context, batch []Learned, _ time.Time) ([]Outcome, error) {
	out := make([]Outcome, len(batch))
	for i, l := range batch {
		for _, k := range l.Keys {
			m.counts[k] = addCount(m.counts[k], l.Spam, 1)
		}
		bump(&m.totals, l.Spam, 1)
		if l.Reinforce {
			out[i] = Reinforced
		}
	}
	return out, nil
}
func (m *memStore) Expire(context.Context, time.Time) (int, error) { return 0, nil }
func (m *memStore) Trim(context.Context, int) (int, error)         { return 0, nil }
func (m *memStore) Stats(context.Context) (Stats, error)           { return Stats{Totals: m.totals}, nil }
func (m *memStore) Close() error                                   { return nil }

// cvSetup is one configuration under cross-validation.
type cvSetup struct {
	name       string
	opt        TokenizerOptions
	params     Params
	rounds     int
	margin     float64
	gramWeight float64 // Config.GramWeight; 0: Fisher alone
}

func defaultSetup() cvSetup {
	return cvSetup{name: "default", opt: DefaultTokenizerOptions(), params: DefaultParams(), rounds: DefaultRounds,
		margin: DefaultMargin, gramWeight: DefaultConfig().GramWeight}
}

// parseAll decodes every message once, in parallel.
func parseAll(set []labelled) []*Doc {
	docs := make([]*Doc, len(set))
	var wg sync.WaitGroup
	n := runtime.GOMAXPROCS(0)
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(set); i += n {
				docs[i] = parseDoc(set[i].raw)
			}
		}(w)
	}
	wg.Wait()
	return docs
}

// crossValidate returns the out-of-fold score of every message of set
// under k-fold cross-validation (fold = index mod k), each fold's model
// trained with the Trainer's rounds on the other folds.
func crossValidate(t testing.TB, set []labelled, docs []*Doc, c cvSetup, k int) []float64 {
	return crossValidateSeed(t, set, docs, c, k, 0)
}

// cvFolds assigns each of n messages a fold: index mod k for seed 0, else
// a shuffle by seed of the same balanced assignment (repeated CV).
func cvFolds(n, k int, seed uint64) []int {
	folds := make([]int, n)
	for i := range folds {
		folds[i] = i % k
	}
	if seed != 0 {
		r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
		r.Shuffle(n, func(i, j int) { folds[i], folds[j] = folds[j], folds[i] })
	}
	return folds
}

// crossValidateSeed is crossValidate with the folds shuffled by seed.
func crossValidateSeed(t testing.TB, set []labelled, docs []*Doc, c cvSetup, k int, seed uint64) []float64 {
	t.Helper()
	keys := cvKeys(docs, c.opt)
	cvGramCache(set)
	folds := cvFolds(len(set), k, seed)
	scores := make([]float64, len(set))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for fold := 0; fold < k; fold++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(fold int) {
			defer func() { <-sem; wg.Done() }()
			cvFold(t, set, keys, c, folds, fold, scores)
		}(fold)
	}
	wg.Wait()
	return scores
}

var keyCache struct {
	sync.Mutex
	docs []*Doc
	m    map[TokenizerOptions][][]Key
}

// cvKeys tokenizes docs with opt, once per options.
func cvKeys(docs []*Doc, opt TokenizerOptions) [][]Key {
	keyCache.Lock()
	defer keyCache.Unlock()
	if len(keyCache.docs) == 0 || &keyCache.docs[0] != &docs[0] {
		keyCache.docs, keyCache.m = docs, map[TokenizerOptions][][]Key{}
	}
	if k, ok := keyCache.m[opt]; ok {
		return k
	}
	tok := NewTokenizer(opt)
	keys := make([][]Key, len(docs))
	for i, d := range docs {
		keys[i] = tok.Keys(d)
	}
	keyCache.m[opt] = keys
	return keys
}

var gramCache struct {
	sync.Mutex
	set   []labelled
	grams [][]uint32
}

// cvGramCache computes the gram features of set, once per set.
func cvGramCache(set []labelled) [][]uint32 {
	gramCache.Lock()
	defer gramCache.Unlock()
	if len(gramCache.set) == 0 || &gramCache.set[0] != &set[0] {
		gramCache.set, gramCache.grams = set, make([][]uint32, len(set))
		for i, m := range set {
			gramCache.grams[i] = gramFeatures(m.raw, nil)
		}
	}
	return gramCache.grams
}

func cvFold(t testing.TB, set []labelled, keys [][]Key, c cvSetup, folds []int, fold int, scores []float64) {
	grams := cvGramCache(set)
	ctx := context.Background()
	{
		st, err := Open(newMemStore(), DefaultConfig())
		if err != nil {
			t.Error(err)
			return
		}
		st.params = c.params
		tr := NewTrainer(st)
		tr.Rounds, tr.Margin = c.rounds, c.margin
		for i, m := range set {
			if folds[i] != fold {
				l := Learned{Hash: MsgHash{byte(i), byte(i >> 8)}, Keys: keys[i], Spam: m.spam}
				if c.gramWeight > 0 {
					l.Grams = grams[i]
				}
				tr.batch = append(tr.batch, l)
			}
		}
		if _, err := tr.Finish(ctx); err != nil {
			t.Error(err)
			return
		}
		store := st.store.(*memStore)
		buf := make([]Count, 0, 4096)
		for i := range set {
			if folds[i] != fold {
				continue
			}
			buf = buf[:0]
			for _, key := range keys[i] {
				if cnt, ok := store.counts[key]; ok {
					buf = append(buf, cnt)
				}
			}
			scores[i], _ = c.params.Score(buf, store.totals.Spam, store.totals.Ham)
			if c.gramWeight > 0 {
				scores[i] = blend(scores[i], store.grams.logit(grams[i]), c.gramWeight)
			}
		}
	}
}

// cvCutoffs are the spam cutoffs reported.
var cvCutoffs = []float64{0.2, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999}

func cvReport(set []labelled, scores []float64) string {
	s := ""
	for _, cut := range cvCutoffs {
		s += fmt.Sprintf("\n  cutoff %-6g %s", cut, measure(set, scores, cut))
	}
	return s
}

// TestCVSweep is the tuning tool: k-fold cross-validation on TRAIN only of
// the configurations in cvSweep (BAYES_K folds, default 5), repeated with
// BAYES_SEEDS fold shuffles (default 1: index mod k) and the errors summed
// over the repeats. It runs when BAYES_SWEEP=1 (minutes of CPU; the
// defaults' own cross-validation is TestCrossValidation).
func TestCVSweep(t *testing.T) {
	if os.Getenv("BAYES_SWEEP") == "" {
		t.Skip("tuning tool: set BAYES_SWEEP=1 to run")
	}
	train := loadCorpus(t, "train.tar.gz")
	docs := parseAll(train)
	k, seeds := envInt("BAYES_K", 5), envInt("BAYES_SEEDS", 1)
	for _, c := range cvSweep() {
		start := time.Now()
		sum := make([]metrics, len(cvCutoffs))
		var pooled []float64
		for seed := 0; seed < seeds; seed++ {
			scores := crossValidateSeed(t, train, docs, c, k, uint64(seed))
			pooled = append(pooled, scores...)
			for j, cut := range cvCutoffs {
				m := measure(train, scores, cut)
				sum[j].ham, sum[j].spam = sum[j].ham+m.ham, sum[j].spam+m.spam
				sum[j].fp, sum[j].fn = sum[j].fp+m.fp, sum[j].fn+m.fn
			}
			if seed == 0 && os.Getenv("BAYES_MISSES") != "" {
				for i, m := range train {
					if m.spam != (scores[i] >= 0.9) {
						t.Logf("  wrong: %s %.4f %d tokens", m.name, scores[i], len(cvKeys(docs, c.opt)[i]))
					}
				}
			}
		}
		line := ""
		for j, cut := range cvCutoffs {
			line += fmt.Sprintf("  %g:%d/%d", cut, sum[j].fp, sum[j].fn)
		}
		t.Logf("%-40s %5.1fs FP/FN%s", c.name, time.Since(start).Seconds(), line)
		line = ""
		for _, cut := range cvCutoffs {
			line += fmt.Sprintf("  %g:%.2f", cut, holdoutChance(train, pooled, cut))
		}
		t.Logf("%-40s chance a holdout meets the target:%s", "", line)
	}
}

// holdoutChance estimates, by resampling the out-of-fold scores (pooled
// over the repeats, set's labels repeating with them), the chance that a
// holdout of the hidden one's size (783 ham, 396 spam) meets the issue's
// target at cutoff: FP at most 0.24% (1 of 783), FN at most 2% (7 of 396),
// accuracy at least 99.3% (at most 8 errors).
func holdoutChance(set []labelled, scores []float64, cutoff float64) float64 {
	var ham, spam []float64
	for i, sc := range scores {
		if set[i%len(set)].spam {
			spam = append(spam, sc)
		} else {
			ham = append(ham, sc)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	const trials = 10000
	ok := 0
	for range trials {
		fp, fn := 0, 0
		for range 783 {
			if ham[r.IntN(len(ham))] >= cutoff {
				fp++
			}
		}
		for range 396 {
			if spam[r.IntN(len(spam))] < cutoff {
				fn++
			}
		}
		if fp <= 1 && fn <= 7 && fp+fn <= 8 {
			ok++
		}
	}
	return float64(ok) / trials
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// Floors of TestCrossValidation: 5-fold CV on TRAIN with the defaults
// reached FP 5/2948, FN 14/1307, accuracy 99.55% at spam_cutoff 0.99 when
// committed (Fisher alone, before the gram model: 6/20 at 0.9, 3/29 at
// 0.99); the floors leave a margin of two messages each.
const (
	cvMaxFP  = 7
	cvMaxFN  = 16
	cvMinAcc = 99.45
)

// TestCrossValidation is the regression guard the tuning relied on: 5-fold
// cross-validation on the TRAIN split with the default tokenizer, Params,
// Trainer rounds and spam_cutoff. Its 4255 messages make it a steadier
// guard than the 612 of TEST (one TEST ham is 0.24%).
func TestCrossValidation(t *testing.T) {
	train := loadCorpus(t, "train.tar.gz")
	scores := crossValidate(t, train, parseAll(train), defaultSetup(), 5)
	cut := DefaultConfig().SpamCutoff
	t.Logf("5-fold CV on TRAIN:%s", cvReport(train, scores))
	var unsureHam, unsureSpam, passSpam int
	hamCut := DefaultConfig().HamCutoff
	for i, m := range train {
		switch {
		case scores[i] > hamCut && scores[i] < cut && m.spam:
			unsureSpam++
		case scores[i] > hamCut && scores[i] < cut:
			unsureHam++
		case scores[i] <= hamCut && m.spam:
			passSpam++
		}
	}
	t.Logf("between ham_cutoff %g and spam_cutoff %g (neutral): %d ham, %d spam; spam at or below ham_cutoff (pass): %d",
		hamCut, cut, unsureHam, unsureSpam, passSpam)
	m := measure(train, scores, cut)
	if m.fp > cvMaxFP || m.fn > cvMaxFN || m.accuracy() < cvMinAcc {
		t.Errorf("regression at spam_cutoff %g: %s; floor FP <= %d, FN <= %d, accuracy >= %.2f%%",
			cut, m, cvMaxFP, cvMaxFN, cvMinAcc)
	}
}
