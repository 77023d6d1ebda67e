package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// benchSet has n data-phase rules of mixed kinds, none of which matches,
// so Decide evaluates every one of them.
func benchSet(b *testing.B, n int) *Set {
	var text strings.Builder
	text.WriteString("stages: [{name: spam, plugin: x}]\nrules:\n")
	kinds := []string{
		`cidr(conn.ip, "10.%d.0.0/16", "172.16.0.0/12")`,
		`domain_match(mail.from, "d%d.example")`,
		`regex(msg.subject, "(?i)offer%d")`,
		`results.spam.score > 100 + %d`,
		`header("X-List-%d") != ""`,
	}
	for i := range n {
		fmt.Fprintf(&text, "  - {name: r%d, when: '%s', action: reject, phase: data}\n", i, fmt.Sprintf(kinds[i%len(kinds)], i))
	}
	set, err := Parse("bench.yaml", []byte(text.String()))
	if err != nil {
		b.Fatal(err)
	}
	if err := set.Bind(map[string][]sdk.Phase{"spam": {sdk.PhaseData}}); err != nil {
		b.Fatal(err)
	}
	return set
}

// BenchmarkDecide: rules/1 is the baseline for rules/50 in the same run.
func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			set := benchSet(b, n)
			env := set.NewEnv(testRequest(), map[string]*sdk.Result{"spam": {Verdict: sdk.VerdictPass, Score: 1}}, Facts{})
			b.ReportAllocs()
			for b.Loop() {
				if r, err := set.Decide(sdk.PhaseData, env); r != nil || err != nil {
					b.Fatal(r, err)
				}
			}
		})
	}
}
