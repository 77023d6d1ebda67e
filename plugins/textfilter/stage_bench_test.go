package textfilter

import (
	"bytes"
	"context"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/mime"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// BenchmarkStage100KB is each stage on a 100 KB message, with 10,000
// literal patterns, against mime.Parse of the same message in the same run.
func BenchmarkStage100KB(b *testing.B) {
	raw := plugintest.ReportMessage(b)
	msg := sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: "=?UTF-8?B?5Zub5Y2K5pyf5aCx5ZGK?="}}, raw)
	pats := make([]any, 0, 10000)
	for _, p := range benchPatterns(10000) {
		pats = append(pats, p)
	}
	cfg := map[string]any{"lists": []any{map[string]any{"name": "big", "patterns": pats}}}
	for _, c := range []struct {
		name string
		st   sdk.Stage
	}{{"textfilter", NewText()}, {"subject", NewSubject()}} {
		b.Run(c.name, func(b *testing.B) {
			if err := c.st.Configure(context.Background(), sdk.Env{}, cfg); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := c.st.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: msg}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("baseline-mime.Parse", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			mime.Parse(bytes.NewReader(raw), mime.DefaultLimits())
		}
	})
}
