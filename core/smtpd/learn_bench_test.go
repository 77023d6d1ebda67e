package smtpd

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/queue"
	"github.com/portcullis-mta/portcullis/sdk"
)

// BenchmarkLearnHook measures what the learn hook costs the SMTP side: every
// message is tagged learn:spam; the baseline has no Learn hook, the others
// a hook that reads the message, or one that also takes 5 ms (a slow
// classifier: the slots fill and events are dropped, the replies go on).
func BenchmarkLearnHook(b *testing.B) {
	tagAll := &ruleRunner{rules: map[sdk.Phase]func(*sdk.Request) *pipeline.Decision{
		sdk.PhaseData: func(*sdk.Request) *pipeline.Decision {
			return &pipeline.Decision{Action: pipeline.Continue, Tags: []string{"learn:spam"}}
		},
	}}
	read := func(_ context.Context, _ bool, _ string, open func() (io.ReadCloser, error)) {
		if rc, err := open(); err == nil {
			_, _ = io.Copy(io.Discard, rc)
			rc.Close()
		}
	}
	slow := func(ctx context.Context, spam bool, id string, open func() (io.ReadCloser, error)) {
		read(ctx, spam, id, open)
		time.Sleep(5 * time.Millisecond)
	}
	msg := benchMessage(5 << 10)
	for _, tc := range []struct {
		name  string
		learn LearnFunc
	}{{"baseline-no-hook", nil}, {"hook-reads", read}, {"hook-reads-slow-5ms", slow}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := testConfig(b)
			cfg.Limits.MaxConnectionsPerIP = 0
			ts := startServer(b, cfg, func(d *Deps) {
				d.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
				q, err := queue.Open(b.TempDir(), queue.Options{NoSync: true, Poll: -1})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { q.Close() })
				d.Queue, d.Pipeline, d.Learn = q, tagAll, tc.learn
			})
			loadSessions(b, ts.addr(), 20, msg)
		})
	}
}
