package bayes

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/portcullis-mta/portcullis/sdk"
)

// synth builds a message from a topic vocabulary so that tests learn
// something real: spam talks money, ham talks builds.
func synth(i int, spam bool) []byte {
	words := "kernel patch build review merge test release branch linker toolchain"
	subj := "Re: build " + fmt.Sprint(i)
	if spam {
		words = "cash winner free offer viagra casino prize million urgent claim"
		subj = "You are a WINNER " + fmt.Sprint(i)
	}
	w := strings.Fields(words)
	var body strings.Builder
	for j := 0; j < 40; j++ {
		body.WriteString(w[(i*7+j*3)%len(w)] + " ")
	}
	return []byte(fmt.Sprintf("From: a%d@example.org\r\nSubject: %s\r\nMessage-ID: <%d.%v@example.org>\r\n\r\n%s\r\n",
		i, subj, i, spam, body.String()))
}

func newTestStage(t *testing.T, config map[string]any) *Stage {
	t.Helper()
	st := NewStage()
	env := sdk.Env{StageName: "bayes", StatePath: filepath.Join(t.TempDir(), "state.bayes.db")}
	if err := st.Configure(context.Background(), env, config); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func check(t *testing.T, st *Stage, raw []byte) *sdk.Result {
	t.Helper()
	req := &sdk.Request{Phase: sdk.PhaseData, Message: sdk.NewBytesMessage(nil, raw)}
	r, err := st.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStageNeedsMinimumTraining(t *testing.T) {
	st := newTestStage(t, map[string]any{"min_spam": 5, "min_ham": 5})
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		if _, err := st.LearnRaw(ctx, synth(i, true), true); err != nil {
			t.Fatal(err)
		}
		if _, err := st.LearnRaw(ctx, synth(i, false), false); err != nil {
			t.Fatal(err)
		}
	}
	r := check(t, st, synth(100, true))
	if r.Verdict != sdk.VerdictNeutral || !strings.Contains(r.Reason, "not enough training") {
		t.Errorf("below minimum: %+v", r)
	}
	for i := 4; i < 20; i++ {
		_, _ = st.LearnRaw(ctx, synth(i, true), true)
		_, _ = st.LearnRaw(ctx, synth(i, false), false)
	}
	tests := []struct {
		name string
		raw  []byte
		want sdk.Verdict
	}{
		{"spam", synth(101, true), sdk.VerdictFail},
		{"ham", synth(102, false), sdk.VerdictPass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := check(t, st, tt.raw)
			if r.Verdict != tt.want {
				t.Errorf("verdict %s score %v reason %q, want %s", r.Verdict, r.Score, r.Reason, tt.want)
			}
			if r.Attrs["spam"] != "20" || r.Attrs["ham"] != "20" {
				t.Errorf("attrs %v", r.Attrs)
			}
		})
	}
	if r := check(t, st, synth(1, true)); r.Score < 0 || r.Score > 1 {
		t.Errorf("score %v out of [0,1]", r.Score)
	}
}

// TestMinimumCountsMessages: min_spam and min_ham count distinct messages,
// not the counts train-on-error adds when it learns a message again (bulk
// learning counted 150 spam as 325 and gave verdicts below the minimum).
// Moving a message to the other class moves it in the count too; stats,
// the reason and the attrs say the same.
func TestMinimumCountsMessages(t *testing.T) {
	st := newTestStage(t, map[string]any{"min_spam": 5, "min_ham": 5})
	ctx := context.Background()
	var batch []Learned
	for i := 0; i < 4; i++ {
		batch = append(batch, st.Prepare(synth(i, true), true), st.Prepare(synth(i, false), false))
	}
	if _, err := st.Store().Learn(ctx, batch, time.Now()); err != nil {
		t.Fatal(err)
	}
	for range 3 { // as the rounds of bulk learning do with messages it got wrong
		for i := range batch {
			batch[i].Reinforce = true
		}
		if _, err := st.Store().Learn(ctx, batch, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if tot, _ := st.Store().Totals(ctx); tot.Spam < 5 || tot.Ham < 5 {
		t.Fatalf("counted %+v: the test needs more than the minimum counted", tot)
	}
	r := check(t, st, synth(100, true))
	if r.Verdict != sdk.VerdictNeutral || !slices.Contains(r.Tags, TagUntrained) ||
		!strings.Contains(r.Reason, "not enough training: 4 spam, 4 ham learned") || r.Attrs["spam"] != "4" {
		t.Errorf("4 messages of each, counted 16 times: %+v", r)
	}
	if s, err := st.Store().Stats(ctx); err != nil || s.SpamMessages != 4 || s.HamMessages != 4 {
		t.Errorf("stats %+v %v", s, err)
	}
	// One ham moved to spam: 5 spam, 3 ham.
	if o, _ := st.LearnRaw(ctx, synth(0, false), true); o != Moved {
		t.Fatalf("move: %v", o)
	}
	if r := check(t, st, synth(100, true)); !strings.Contains(r.Reason, "5 spam, 3 ham learned") {
		t.Errorf("after a move: %+v", r)
	}
	if _, err := st.LearnRaw(ctx, synth(50, false), false); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LearnRaw(ctx, synth(51, false), false); err != nil {
		t.Fatal(err)
	}
	if r := check(t, st, synth(100, true)); slices.Contains(r.Tags, TagUntrained) || r.Attrs["ham"] != "5" {
		t.Errorf("5 and 5 learned: %+v", r)
	}
	// A file from before the count was kept: counted from the message
	// records, and kept from the next learn on.
	b := st.Store().(*BoltStore)
	if err := b.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete([]byte("messages")) }); err != nil {
		t.Fatal(err)
	}
	if r := check(t, st, synth(100, true)); r.Attrs["spam"] != "5" || r.Attrs["ham"] != "5" {
		t.Errorf("without the kept count: %+v", r.Attrs)
	}
	if _, err := st.LearnRaw(ctx, synth(52, false), false); err != nil {
		t.Fatal(err)
	}
	if r := check(t, st, synth(100, true)); r.Attrs["spam"] != "5" || r.Attrs["ham"] != "6" {
		t.Errorf("after the next learn: %+v", r.Attrs)
	}
}

func TestLearnSameMessageTwice(t *testing.T) {
	st := newTestStage(t, nil)
	ctx := context.Background()
	raw := synth(1, true)
	for i, want := range []Outcome{Added, Unchanged} {
		if o, err := st.LearnRaw(ctx, raw, true); err != nil || o != want {
			t.Fatalf("learn %d: %v %v, want %v", i, o, err, want)
		}
	}
	// The same message relayed again (another Received field) is the same message.
	relayed := append([]byte("Received: from relay.example by mx.example; Fri, 27 Nov 2026 06:00:00 +0000\r\n"), raw...)
	if o, _ := st.LearnRaw(ctx, relayed, false); o != Moved {
		t.Errorf("relearn as ham: %v, want moved", o)
	}
	tot, _ := st.Store().Totals(ctx)
	if tot != (Totals{Spam: 0, Ham: 1}) {
		t.Errorf("totals %+v, want 0 spam 1 ham", tot)
	}
}

func TestAutoLearnGuard(t *testing.T) {
	st := newTestStage(t, map[string]any{"min_spam": 10, "min_ham": 10, "spam_cutoff": 0.9, "ham_cutoff": 0.1})
	ctx := context.Background()
	msg := func(raw []byte) *sdk.Message { return sdk.NewBytesMessage(nil, raw) }
	// Below the minimum, rules may bootstrap the filter.
	for i := 0; i < 10; i++ {
		if ok, why, err := st.AutoLearn(ctx, msg(synth(i, true)), true); err != nil || !ok {
			t.Fatalf("bootstrap spam %d: %v %q %v", i, ok, why, err)
		}
		if ok, why, err := st.AutoLearn(ctx, msg(synth(i, false)), false); err != nil || !ok {
			t.Fatalf("bootstrap ham %d: %v %q %v", i, ok, why, err)
		}
	}
	tests := []struct {
		name   string
		raw    []byte
		spam   bool
		learns bool
		reason string
	}{
		{"spam already caught", synth(50, true), true, false, "already spam"},
		{"rule says spam, classifier says ham", synth(51, false), true, false, "refused"},
		{"rule says ham, classifier says spam", synth(52, true), false, false, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why, err := st.AutoLearn(ctx, msg(tt.raw), tt.spam)
			if err != nil || ok != tt.learns || !strings.Contains(why, tt.reason) {
				t.Errorf("got %v %q %v, want %v %q", ok, why, err, tt.learns, tt.reason)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  map[string]any
		ok   bool
	}{
		{"defaults", nil, true},
		{"cutoffs", map[string]any{"spam_cutoff": 0.95, "ham_cutoff": 0.05}, true},
		{"ints from YAML", map[string]any{"min_spam": 10, "min_ham": uint64(20)}, true},
		{"unknown key", map[string]any{"spam_cutof": 0.9}, false},
		{"ham above spam", map[string]any{"spam_cutoff": 0.5, "ham_cutoff": 0.6}, false},
		{"not a number", map[string]any{"spam_cutoff": "high"}, false},
		{"negative count", map[string]any{"min_ham": -1}, false},
		{"max_tokens", map[string]any{"max_tokens": 5000}, true},
		{"max_tokens off", map[string]any{"max_tokens": 0}, true},
		{"negative max_tokens", map[string]any{"max_tokens": -1}, false},
		{"gram_weight", map[string]any{"gram_weight": 2.5}, true},
		{"gram_weight off", map[string]any{"gram_weight": 0}, true},
		{"negative gram_weight", map[string]any{"gram_weight": -1}, false},
		{"huge gram_weight", map[string]any{"gram_weight": 1000}, false},
		{"gram_weight not a number", map[string]any{"gram_weight": "x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(tt.cfg)
			if (err == nil) != tt.ok {
				t.Errorf("err %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if err := NewStage().Configure(context.Background(), sdk.Env{}, nil); err == nil {
		t.Error("Configure without a state path succeeded")
	}
}

func TestCheckOtherPhases(t *testing.T) {
	st := newTestStage(t, nil)
	r, err := st.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseRcpt})
	if err != nil || r.Verdict != sdk.VerdictNone {
		t.Errorf("rcpt phase: %+v %v", r, err)
	}
	if info := st.Info(); len(info.Phases) != 1 || info.Phases[0] != sdk.PhaseData || info.Name != "bayes" {
		t.Errorf("info %+v", info)
	}
}

// TestLearnTrimsStore: with max_tokens, learning keeps the store bounded:
// the first learn of a process checks, later ones at most hourly, and a
// bulk learn (Trainer) always checks at its end and reports what it deleted.
func TestLearnTrimsStore(t *testing.T) {
	ctx := context.Background()
	st := newTestStage(t, map[string]any{"max_tokens": 40})
	clock := time.Unix(1_800_000_000, 0)
	st.now = func() time.Time { return clock }
	tokens := func() int {
		t.Helper()
		stats, err := st.Store().Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return stats.Tokens
	}
	learnNew := func(i int) {
		t.Helper()
		if _, err := st.LearnRaw(ctx, synth(i, i%2 == 0), i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	learnNew(0)
	one := tokens()
	if one > 40 {
		t.Fatalf("one message gives %d tokens: too many for this test", one)
	}
	i := 1
	for ; tokens() <= 40; i++ {
		learnNew(i)
	}
	// Over 40 now, and the last check was at the first learn, this hour.
	over := tokens()
	clock = clock.Add(59 * time.Minute)
	learnNew(i)
	if n := tokens(); n < over {
		t.Fatalf("trimmed within the hour: %d tokens, had %d", n, over)
	}
	clock = clock.Add(2 * time.Minute)
	i++
	learnNew(i)
	if n := tokens(); n > 30 {
		t.Errorf("an hour after the last check: %d tokens, want at most 30 (3/4 of max_tokens 40)", n)
	}
	tr := NewTrainer(st)
	for j := 100; j < 140; j++ {
		if err := tr.Add(ctx, synth(j, j%2 == 0), j%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := tr.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := tokens(); sum.Trimmed == 0 || n > 30 {
		t.Errorf("after a bulk learn: %d trimmed, %d tokens left; want some trimmed and at most 30", sum.Trimmed, n)
	}
}
