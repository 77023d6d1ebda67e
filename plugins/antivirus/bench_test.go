package antivirus

import (
	"bytes"
	"context"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/mime"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// BenchmarkStage100KB scans a 100 KB message with the real clamd (over the
// unix socket and TCP), against mime.Parse of the same message in the same run.
func BenchmarkStage100KB(b *testing.B) {
	sock, tcp, _ := startClamd(b)
	raw := plugintest.ReportMessage(b)
	msg := sdk.NewBytesMessage(nil, raw)
	for name, addr := range map[string]string{"clamd-unix": sock, "clamd-tcp": "tcp:" + tcp} {
		b.Run(name, func(b *testing.B) {
			st := New()
			if err := st.Configure(context.Background(), sdk.Env{}, map[string]any{"clamd": addr}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				res, err := st.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: msg})
				if err != nil || res.Verdict != sdk.VerdictPass {
					b.Fatalf("%+v %v", res, err)
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
