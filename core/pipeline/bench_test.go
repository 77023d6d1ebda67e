package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// BenchmarkRun measures one phase with 0, 1, 4 and 8 in-process stages and
// five rules; stages=0 is the baseline of the same run.
func BenchmarkRun(b *testing.B) {
	for _, n := range []int{0, 1, 4, 8} {
		b.Run(fmt.Sprintf("stages=%d", n), func(b *testing.B) {
			var text strings.Builder
			text.WriteString("stages:\n")
			clients := map[string]StageClient{}
			for i := range n {
				name := fmt.Sprintf("s%d", i)
				fmt.Fprintf(&text, "  - {name: %s, plugin: x}\n", name)
				clients[name] = &fake{phases: []sdk.Phase{sdk.PhaseRcpt}, check: verdict(sdk.VerdictPass)}
			}
			text.WriteString("rules:\n")
			for i := range 5 {
				fmt.Fprintf(&text, "  - {name: r%d, when: 'rcpt == \"x%d@example.test\"', action: reject}\n", i, i)
			}
			e := newEngine(b, text.String(), clients)
			req := request(sdk.PhaseRcpt)
			req.Envelope.Rcpt = "b@example.test"
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if d, err := e.Run(ctx, req, map[string]*sdk.Result{}); err != nil || d.Action != Continue {
					b.Fatal(d, err)
				}
			}
		})
	}
}
