package bayes

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func gramOf(s string) uint32 { return gramHash(binary.LittleEndian.Uint32([]byte(s))) }

// TestGramHash pins the hash to hand-worked values: "abcd" is 0x64636261
// little endian; 0x64636261 * 0x9E3779B1 = 0x3E0B17CA_630DDE11, so mod
// 2^32 it is 0x630DDE11, and its top 18 bits are 0x18C37.
func TestGramHash(t *testing.T) {
	if got := gramOf("abcd"); got != 0x18C37 {
		t.Errorf("gramHash(abcd) = %#x, want 0x18c37", got)
	}
	if gramOf("abcd") == gramOf("abce") || gramOf("abcd") == gramOf("bbcd") {
		t.Error("a change in the first or last byte did not change the feature")
	}
}

// TestGramFeatures: every 4 bytes of the start of the message, hashed and
// distinct; an mbox From line is not part of the message; bytes
// past gramBytes are not read.
func TestGramFeatures(t *testing.T) {
	sorted := func(ss ...string) []uint32 {
		var out []uint32
		for _, s := range ss {
			out = append(out, gramOf(s))
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	long := strings.Repeat("a", gramBytes-4)
	for _, tc := range []struct {
		name string
		raw  string
		want []uint32
	}{
		{"six bytes", "abcdef", sorted("abcd", "bcde", "cdef")},
		{"repeats once", "aaaaaaaa", sorted("aaaa")},
		{"shorter than a gram", "abc", nil},
		{"mbox From line", "From a@b Mon Jan 1 00:00:00 2026\nabcde", sorted("abcd", "bcde")},
		{"last gram inside the limit", long + "WXYZ", sorted("aaaa", "aaaW", "aaWX", "aWXY", "WXYZ")},
		{"past the limit", long + "WXYZQRST", sorted("aaaa", "aaaW", "aaWX", "aWXY", "WXYZ")},
		{"one byte past", long + "WXYZ!", sorted("aaaa", "aaaW", "aaWX", "aWXY", "WXYZ")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := gramFeatures([]byte(tc.raw), nil)
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			slices.Sort(got) // in order of appearance; compared as sets
			if !slices.Equal(got, tc.want) {
				t.Errorf("gramFeatures(%.40q) = %v, want %v", tc.raw, got, tc.want)
			}
		})
	}
}

// TestWeightsStep checks one SGD step of the logistic loss against values
// worked by hand: from zero weights p = 0.5, so a spam moves each of its
// features by 0.01 * (1 - 0.5) = 0.005; a ham with the same two features
// then has logit 0.01, p = 1/(1+e^-0.01) = 0.502499979, and moves each by
// 0.01 * (0 - 0.502499979) = -0.00502499979.
func TestWeightsStep(t *testing.T) {
	w := make(Weights, gramTable)
	f := []uint32{1, 7}
	w.step(f, true, gramRate)
	if w[1] != 0.005 || w[7] != 0.005 || w[2] != 0 {
		t.Fatalf("after a spam: w[1] %v w[7] %v w[2] %v, want 0.005 0.005 0", w[1], w[7], w[2])
	}
	if got := w.logit(f); math.Abs(got-0.01) > 1e-9 {
		t.Fatalf("logit %v, want 0.01", got)
	}
	w.step(f, false, gramRate)
	if want := 0.005 - 0.00502499979; math.Abs(float64(w[1])-want) > 1e-9 || w[1] != w[7] {
		t.Fatalf("after a ham: w[1] %v w[7] %v, want %v", w[1], w[7], want)
	}
	if got := Weights(nil).logit(f); got != 0 {
		t.Errorf("untrained logit %v, want 0", got)
	}
}

// TestBlend checks the combination against hand-worked values:
// sigmoid(logit(fisher) + b*z), Fisher's logit clipped to +-30.
func TestBlend(t *testing.T) {
	for _, tc := range []struct {
		fisher, z, b, want float64
	}{
		{0.5, 1, 3, 1 / (1 + math.Exp(-3))},                      // 0.952574
		{0.5, 0, 3, 0.5},                                         // untrained: Fisher alone
		{0.9, 0.5, 0, 0.9},                                       // gram_weight 0: Fisher alone
		{1, -20, 3, 1 / (1 + math.Exp(30))},                      // 1.0 clipped to logit 30, minus 60
		{1e-200, 5, 3, 1 / (1 + math.Exp(15))},                   // clipped to -30, plus 15
		{0.8, -0.1, 2, 1 / (1 + math.Exp(-(math.Log(4) - 0.2)))}, // logit(0.8) = ln 4
	} {
		if got := blend(tc.fisher, tc.z, tc.b); math.Abs(got-tc.want) > 1e-9*tc.want {
			t.Errorf("blend(%v, %v, %v) = %v, want %v", tc.fisher, tc.z, tc.b, got, tc.want)
		}
	}
}

func TestWeightsEncoding(t *testing.T) {
	w := make(Weights, gramTable)
	w[0], w[12345], w[gramTable-1] = -1.5, 0.25, float32(math.SmallestNonzeroFloat32)
	got := decodeWeights(encodeWeights(w))
	if !slices.Equal(got, w) {
		t.Fatal("weights changed in a round trip")
	}
	if decodeWeights(nil) != nil || decodeWeights(make([]byte, 4*gramTable-4)) != nil {
		t.Error("a missing or short value must read as untrained")
	}
}

// TestBoltStoreGrams: the weights and counts round-trip through the bbolt
// file, and the classifying view carries the learned ones.
func TestBoltStoreGrams(t *testing.T) {
	ctx := context.Background()
	s, _ := OpenBolt(filepath.Join(t.TempDir(), "g.db"))
	s.noSync = true
	if w, n, err := s.Grams(ctx); err != nil || w != nil || n != (Totals{}) {
		t.Fatalf("before learning: %v, %+v, %v", w, n, err)
	}
	f := gramFeatures([]byte("Subject: cheap pills"), nil)
	for _, d := range [][2]int{{1, 0}, {1, -1}} { // a spam, then a ham moved to spam
		if err := s.LearnGrams(ctx, d[0], d[1], func(w Weights) { w.step(f, true, gramRate) }); err != nil {
			t.Fatal(err)
		}
	}
	w, n, err := s.Grams(ctx)
	if err != nil || len(w) != gramTable || n != (Totals{Spam: 2}) {
		t.Fatalf("after learning: len %d, counts %+v, %v", len(w), n, err)
	}
	want := make(Weights, gramTable)
	want.step(f, true, gramRate)
	want.step(f, true, gramRate)
	if !slices.Equal(w, want) {
		t.Error("stored weights differ from the steps taken")
	}
	v, err := s.classifying(DefaultParams())
	if err != nil || !slices.Equal(v.grams, want) || v.gramN != n {
		t.Fatalf("classifying view: grams equal %v, counts %+v, %v", slices.Equal(v.grams, want), v.gramN, err)
	}
}

// TestLearnGramsOnce: learning a message steps the gram model once;
// learning it again as the same class leaves the weights alone; moving it
// to the other class steps them towards that class. A bulk learn trains
// the model, and learning the same messages again changes nothing.
func TestLearnGramsOnce(t *testing.T) {
	ctx := context.Background()
	st := newTestStage(t, nil)
	raw := synth(1, true)
	f := gramFeatures(raw, nil)
	weights := func() Weights {
		w, _, err := st.Store().(GramStore).Grams(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	if _, err := st.LearnRaw(ctx, raw, true); err != nil {
		t.Fatal(err)
	}
	once := weights()
	if once == nil || once[f[0]] != 0.005 || once[f[len(f)-1]] != 0.005 {
		t.Fatalf("after one learn: %v", once != nil)
	}
	if out, err := st.LearnRaw(ctx, raw, true); err != nil || out != Unchanged {
		t.Fatal(out, err)
	}
	if !slices.Equal(weights(), once) {
		t.Error("learning the same message twice stepped the gram model again")
	}
	if out, err := st.LearnRaw(ctx, raw, false); err != nil || out != Moved {
		t.Fatal(out, err)
	}
	if z := weights().logit(f); z >= once.logit(f) {
		t.Errorf("moved to ham: logit %v, not below %v", z, once.logit(f))
	}

	bulk := newTestStage(t, nil)
	learn := func() TrainSummary { return bulkLearn(t, bulk, 100, 30) }
	learn()
	first, n, _ := bulk.Store().(GramStore).Grams(ctx)
	if n != (Totals{Spam: 15, Ham: 15}) {
		t.Errorf("gram model counts after a bulk learn: %+v, want 15 spam, 15 ham", n)
	}
	spamZ, hamZ := first.logit(gramFeatures(synth(200, true), nil)), first.logit(gramFeatures(synth(201, false), nil))
	if !(spamZ > 0 && hamZ < 0) {
		t.Errorf("after a bulk learn: unseen spam logit %v, ham %v; want > 0 and < 0", spamZ, hamZ)
	}
	if sum := learn(); sum.Spam[Unchanged] != 15 || sum.Ham[Unchanged] != 15 {
		t.Fatalf("second bulk learn: %+v", sum)
	}
	if again, n2, _ := bulk.Store().(GramStore).Grams(ctx); !bytes.Equal(encodeWeights(again), encodeWeights(first)) || n2 != n {
		t.Error("learning the same messages again changed the gram model")
	}
}

// TestGramModelNeedsTraining: the gram model has no say until it learned
// min_spam and min_ham messages, as Fisher gives no verdict before; a
// store whose tokens were learned without it (before it existed, or with
// gram_weight 0) scores by Fisher alone until it has.
func TestGramModelNeedsTraining(t *testing.T) {
	ctx := context.Background()
	st := newTestStage(t, map[string]any{"min_spam": 3, "min_ham": 3, "gram_weight": 0})
	for i := range 8 {
		if _, err := st.LearnRaw(ctx, synth(i, i%2 == 0), i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	probe := synth(50, true)
	if err := st.Configure(ctx, envAt(st.storePath()), map[string]any{"min_spam": 3, "min_ham": 3}); err != nil {
		t.Fatal(err)
	}
	score := func() float64 {
		c, err := st.Classify(ctx, probe)
		if err != nil {
			t.Fatal(err)
		}
		return c.Score
	}
	// Two spam and two ham for the gram model: under min_spam and min_ham.
	for i := range 4 {
		if _, err := st.LearnRaw(ctx, synth(100+i, i%2 == 0), i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, n, _ := st.Store().(GramStore).Grams(ctx); n != (Totals{Spam: 2, Ham: 2}) {
		t.Fatalf("gram model counts %+v, want 2 and 2", n)
	}
	tokensOnly, _, _, _, _, err := lookup(ctx, st.Store(), st.params, st.keys(probe))
	if err != nil {
		t.Fatal(err)
	}
	totals, _ := st.Store().Totals(ctx)
	want, _ := st.params.Score(tokensOnly, totals.Spam, totals.Ham)
	if got := score(); got != want {
		t.Errorf("gram model under its minimum: score %v, want Fisher's %v", got, want)
	}
	for i := range 2 {
		if _, err := st.LearnRaw(ctx, synth(200+i, i%2 == 0), i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	tokensOnly, _, _, _, _, _ = lookup(ctx, st.Store(), st.params, st.keys(probe))
	totals, _ = st.Store().Totals(ctx)
	fisher, _ := st.params.Score(tokensOnly, totals.Spam, totals.Ham)
	if got := score(); got == fisher {
		t.Errorf("gram model at 3 spam and 3 ham: score %v is still Fisher's alone", got)
	}
}

// TestGramModelCatchesUp: a store whose messages were learned without the
// gram model (before it existed, or with gram_weight 0) trains it when the
// same corpus is learned again, as `bayes stats` advises; learning it a
// third time changes nothing.
func TestGramModelCatchesUp(t *testing.T) {
	ctx := context.Background()
	st := newTestStage(t, map[string]any{"min_spam": 3, "min_ham": 3, "gram_weight": 0})
	learn := func() TrainSummary { return bulkLearn(t, st, 300, 20) }
	learn()
	if w, n, _ := st.Store().(GramStore).Grams(ctx); w != nil || n != (Totals{}) {
		t.Fatalf("gram_weight 0 trained the model: %+v", n)
	}
	if err := st.Configure(ctx, envAt(st.storePath()), map[string]any{"min_spam": 3, "min_ham": 3}); err != nil {
		t.Fatal(err)
	}
	if sum := learn(); sum.Spam[Unchanged] != 10 || sum.Ham[Unchanged] != 10 {
		t.Fatalf("second learn: %+v", sum)
	}
	w, n, _ := st.Store().(GramStore).Grams(ctx)
	if n != (Totals{Spam: 10, Ham: 10}) || w == nil {
		t.Fatalf("after learning the corpus again: gram model counts %+v, want 10 and 10", n)
	}
	if z := w.logit(gramFeatures(synth(400, true), nil)); z <= 0 {
		t.Errorf("unseen spam logit %v, want > 0", z)
	}
	learn()
	if again, n2, _ := st.Store().(GramStore).Grams(ctx); n2 != n || !bytes.Equal(encodeWeights(again), encodeWeights(w)) {
		t.Errorf("a third learn changed the caught-up model: %+v", n2)
	}
}

// bulkLearn learns synth(from) .. synth(from+n-1), even ones as spam, in
// one Trainer run, as `bayes learn` does.
func bulkLearn(t *testing.T, st *Stage, from, n int) TrainSummary {
	t.Helper()
	ctx := context.Background()
	tr := NewTrainer(st)
	for i := range n {
		if err := tr.Add(ctx, synth(from+i, i%2 == 0), i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := tr.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}
