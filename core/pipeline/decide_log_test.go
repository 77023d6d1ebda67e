package pipeline

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestDecisionLogLine: the data phase's decision line carries the session
// and queue IDs, names the rules that matched without ending the phase
// (a redirect or an added header leaves no other trace of its rule), and a
// stage fault is logged as the decision the session acts on, not as the
// Continue it replaced.
func TestDecisionLogLine(t *testing.T) {
	tests := []struct {
		name, rules string
		check       func(context.Context, *sdk.Request) (*sdk.Result, error)
		onError     string
		want        []string
	}{
		{"applied rules", `
  - {name: flag, action: tag, subject_prefix: '[x] '}
  - {name: mark, action: add_header, header: {name: X-Checked, value: 'yes'}}
  - {name: teach, action: learn_spam}
  - {name: divert, action: redirect, recipients: [trap@example.test]}`,
			verdict(sdk.VerdictPass), "continue",
			[]string{"msg=decision session=s1 phase=data action=continue", "queue_id=Q1", "tags=tag:flag,learn:spam",
				"applied=tag:flag,add_header:mark,learn_spam:teach,redirect:divert"}},
		{"fault tempfail", "", fails, "tempfail",
			[]string{"msg=decision session=s1 phase=data action=tempfail", "queue_id=Q1",
				`reply="451 4.3.0 Temporary failure in stage st"`, `reason="stage st failed: plugin exited"`}},
		{"fault reject", "", fails, "reject",
			[]string{"msg=decision session=s1 phase=data action=reject", "queue_id=Q1", `reply="554 5.7.1 Rejected by policy"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder
			var mu sync.Mutex
			logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
			text := "stages: [{name: st, plugin: x, on_error: " + tc.onError + "}]\nrules:" + tc.rules
			if tc.rules == "" {
				text += " []"
			}
			set := newEngine(t, text, map[string]StageClient{"st": &fake{phases: []sdk.Phase{sdk.PhaseData}}}).Set()
			e, err := New(set, map[string]StageClient{"st": &fake{phases: []sdk.Phase{sdk.PhaseData}, check: tc.check}}, logger)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Run(context.Background(), request(sdk.PhaseData), nil); err != nil {
				t.Fatal(err)
			}
			var line string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "msg=decision") {
					line = l
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("decision line lacks %q:\n%s", w, logs.String())
				}
			}
		})
	}
}

// TestDecisionLineReplyForm: with the session's reply form in the context
// the decision line logs the reply in that form (as sent), not as the
// template or the stage fault made it.
func TestDecisionLineReplyForm(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	text := "stages: [{name: st, plugin: x, on_error: tempfail}]\nrules: []"
	set := newEngine(t, text, map[string]StageClient{"st": &fake{phases: []sdk.Phase{sdk.PhaseData}}}).Set()
	e, err := New(set, map[string]StageClient{"st": &fake{phases: []sdk.Phase{sdk.PhaseData}, check: fails}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithReplyForm(context.Background(), func(d *Decision) string {
		return "421 " + d.Reply.Enhanced + " " + d.Reply.Text
	})
	if _, err := e.Run(ctx, request(sdk.PhaseData), nil); err != nil {
		t.Fatal(err)
	}
	if want := `reply="421 4.3.0 Temporary failure in stage st"`; !strings.Contains(logs.String(), want) {
		t.Errorf("decision line lacks %s:\n%s", want, logs.String())
	}
}
