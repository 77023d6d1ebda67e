package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/portcullis-mta/portcullis/plugins/bayes"
	"github.com/portcullis-mta/portcullis/rules"
	"github.com/portcullis-mta/portcullis/sdk"
)

// TestBayesExampleRules runs the rules of examples/rules/bayes.yaml on real
// results of the stage: an untrained stage (score 0.5, neutral) must not
// tag every message "[SPAM?]", as it did before the "untrained" tag.
func TestBayesExampleRules(t *testing.T) {
	b, err := os.ReadFile("../../examples/rules/bayes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Parse("bayes.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Bind(map[string][]sdk.Phase{"bayes": {sdk.PhaseData}}); err != nil {
		t.Fatal(err)
	}
	decide := func(r *sdk.Result) string {
		t.Helper()
		req := &sdk.Request{Phase: sdk.PhaseData}
		rule, err := set.Decide(sdk.PhaseData, set.NewEnv(req, map[string]*sdk.Result{"bayes": r}, rules.Facts{}))
		if err != nil {
			t.Fatal(err)
		}
		if rule == nil {
			return ""
		}
		return rule.Name
	}

	st := bayes.NewStage()
	env := sdk.Env{StageName: "bayes", StatePath: filepath.Join(t.TempDir(), "state.bayes.db")}
	if err := st.Configure(context.Background(), env, nil); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	msg := []byte("From: a@example.org\r\nSubject: cheap meds\r\n\r\nbuy now\r\n")
	untrained, err := st.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: sdk.NewBytesMessage(nil, msg)})
	if err != nil {
		t.Fatal(err)
	}
	if untrained.Score != 0.5 || untrained.Verdict != sdk.VerdictNeutral || !slices.Contains(untrained.Tags, bayes.TagUntrained) {
		t.Fatalf("untrained result %+v", untrained)
	}
	if got := decide(untrained); got != "" {
		t.Errorf("untrained stage: rule %q matched, want none", got)
	}
	for _, tt := range []struct {
		c    bayes.Classification
		want string
	}{
		{bayes.Classification{Score: 0.7, Verdict: sdk.VerdictNeutral}, "bayes_unsure"},
		{bayes.Classification{Score: 0.3, Verdict: sdk.VerdictNeutral}, ""},
		{bayes.Classification{Score: 0.995, Verdict: sdk.VerdictFail}, "bayes_spam"},
		{bayes.Classification{Score: 0.01, Verdict: sdk.VerdictPass}, ""},
	} {
		if got := decide(tt.c.Result()); got != tt.want {
			t.Errorf("score %v %s: rule %q, want %q", tt.c.Score, tt.c.Verdict, got, tt.want)
		}
	}
}
