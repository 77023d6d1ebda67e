package rules

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// FuzzParse feeds arbitrary bytes to the rule-file parser: it must never
// panic, and every problem must carry a usable position.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/lint/*.yaml")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("stages: [{name: a, plugin: a, when: 'conn.ip != \"\"'}]\nrules: [{name: r, when: 'results.a.verdict == \"fail\"', action: reject, reply: '554 5.7.1 {{conn.ip}}'}]\n"))
	f.Add([]byte("rules:\n  - name: x\n    when: |\n      regex(msg.subject, \"a\") &&\n      cidr(conn.ip, \"::1\")\n    action: tag\n    header: {name: X-A, value: '{{msg.size}}'}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Parse("fuzz.yaml", data)
		if err != nil {
			var probs Problems
			if !errors.As(err, &probs) || len(probs) == 0 {
				t.Fatalf("error %T %v is not Problems", err, err)
			}
			for _, p := range probs {
				if p.Pos.File != "fuzz.yaml" || p.Pos.Line < 1 || p.Pos.Col < 1 || p.Msg == "" {
					t.Fatalf("bad problem %+v", p)
				}
			}
			return
		}
		phases := map[string][]sdk.Phase{}
		for _, st := range set.Stages {
			phases[st.Name] = []sdk.Phase{sdk.PhaseRcpt}
		}
		_ = set.Bind(phases) // may refuse; must not panic
		for _, r := range set.Rules {
			if phaseIndex(r.Phase) < 0 {
				t.Fatalf("rule %q has no phase", r.Name)
			}
		}
	})
}
