package pipeline

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestGarbageResults: a result the rules cannot trust (a verdict they do
// not know, a score that is not a number, megabytes of attributes) is the
// stage's error, decided by on_error, not a result that no rule matches.
func TestGarbageResults(t *testing.T) {
	tests := []struct {
		name string
		res  *sdk.Result
	}{
		{"unknown verdict", &sdk.Result{Verdict: "spammy", Score: 9}},
		{"NaN score", &sdk.Result{Verdict: sdk.VerdictFail, Score: math.NaN()}},
		{"infinite score", &sdk.Result{Verdict: sdk.VerdictFail, Score: math.Inf(-1)}},
		{"huge attrs", &sdk.Result{Verdict: sdk.VerdictFail, Score: 9,
			Attrs: map[string]string{"a": strings.Repeat("x", sdk.MaxResultBytes)}}},
		{"huge header edit", &sdk.Result{Verdict: sdk.VerdictFail, Score: 9,
			Headers: []sdk.HeaderEdit{{Op: sdk.HeaderAdd, Name: "X-Big", Value: strings.Repeat("x", sdk.MaxResultBytes)}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{phases: []sdk.Phase{sdk.PhaseData}, check: func(context.Context, *sdk.Request) (*sdk.Result, error) {
				return tc.res, nil
			}}
			e := newEngine(t, `
stages: [{name: spam, plugin: x, on_error: tempfail}]
rules:
  - {name: spam, when: 'results.spam.score > 5', action: reject}
`, map[string]StageClient{"spam": f})
			d, err := e.Run(context.Background(), request(sdk.PhaseData), nil)
			if err != nil {
				t.Fatal(err)
			}
			if d.Action != Tempfail || replyString(d.Reply) != "451 4.3.0 Temporary failure in stage spam" {
				t.Errorf("got %s %q (reason %s), want the stage's on_error (tempfail)", d.Action, replyString(d.Reply), d.Reason)
			}
			if got := d.Results["spam"].Verdict; got != sdk.VerdictError {
				t.Errorf("verdict %q, want error", got)
			}
		})
	}
}

// TestWhenRuntimeError: a stage's when that fails at run time does not call
// the stage; the stage fails by its on_error and the log names it.
func TestWhenRuntimeError(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	f := &fake{phases: []sdk.Phase{sdk.PhaseMail}, check: verdict(sdk.VerdictPass)}
	e := newEngine(t, `stages: [{name: st, plugin: x, on_error: tempfail, when: 'int(conn.helo) > 0'}]`,
		map[string]StageClient{"st": f})
	e.log = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	d, err := e.Run(context.Background(), request(sdk.PhaseMail), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != Tempfail || d.Reply.Code != 451 || d.Results["st"].Verdict != sdk.VerdictError || f.calls.Load() != 0 {
		t.Errorf("got %s %q verdict %s after %d calls", d.Action, replyString(d.Reply), d.Results["st"].Verdict, f.calls.Load())
	}
	if out := logs.String(); !strings.Contains(out, `level=WARN msg=stage session=s1 phase=mail stage=st verdict=error score=0 reason="stage st: when: invalid operation`) {
		t.Errorf("log does not name the stage and its when error:\n%s", out)
	}
}
