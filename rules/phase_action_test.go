package rules

import (
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestActionSetsEarliestPhase: a rule that reads nothing runs at the
// earliest phase its action makes sense at: accept, reject and tempfail
// from connect on, every action that needs the message at data.
func TestActionSetsEarliestPhase(t *testing.T) {
	set := parse(t, `
rules:
  - {name: accept, action: accept}
  - {name: reject, action: reject}
  - {name: tempfail, action: tempfail}
  - {name: discard, action: discard}
  - {name: quarantine, action: quarantine}
  - {name: tag, action: tag}
  - {name: add_header, action: add_header, header: {name: X-A, value: b}}
  - {name: redirect, action: redirect, recipients: [q@example.test]}
  - {name: learn_spam, action: learn_spam}
  - {name: learn_ham, action: learn_ham}
`)
	for _, r := range set.Rules {
		want := sdk.PhaseData
		switch r.Action {
		case ActionAccept, ActionReject, ActionTempfail:
			want = sdk.PhaseConnect
		}
		if r.Phase != want {
			t.Errorf("rule %s: phase %s, want %s", r.Name, r.Phase, want)
		}
	}
	if _, err := Parse("early.yaml", []byte(`rules: [{name: d, action: discard, phase: connect}]`)); err == nil {
		t.Error("discard with phase: connect loaded; want a problem (the message is not there yet)")
	}
}

// TestEmptyVerdictReadsNone: a plugin that returns a result without a
// verdict is read as "none", as a stage that did not run.
func TestEmptyVerdictReadsNone(t *testing.T) {
	set := parse(t, `stages: [{name: x, plugin: x}]`)
	env := set.NewEnv(testRequest(), map[string]*sdk.Result{"x": {Score: 1}}, Facts{})
	if v := env.Results["x"].Verdict; v != string(sdk.VerdictNone) {
		t.Errorf("verdict %q, want %q", v, sdk.VerdictNone)
	}
}

// TestTemplateEscapedQuote: an escaped quote inside a hole's string
// literal does not end the literal, so a "}}" after it is still text.
func TestTemplateEscapedQuote(t *testing.T) {
	set := parse(t, `rules: [{name: r, action: reject, reply: '550 5.7.1 {{ "a\"}}b" }}!'}]`)
	_, _, text, err := set.Rules[0].RenderReply(sdk.PhaseConnect, set.NewEnv(testRequest(), nil, Facts{}))
	if want := `a"}}b!`; err != nil || text != want {
		t.Errorf("reply %q, %v; want %q", text, err, want)
	}
}
