// Command tracelogplugin is a data-phase stage for TestE2ETrace: it logs one
// line per call through slog, naming the call's queue and session IDs (as a
// plugin must: its log lines reach the gateway's log through the host, which
// cannot tell which call a line belongs to) and the Subject, attacker text
// that must stay inside its value. It answers "pass".
package main

import (
	"context"
	"log/slog"

	"github.com/portcullis-mta/portcullis/sdk"
)

func main() { sdk.Serve(tracelog{}) }

type tracelog struct{}

var _ sdk.Stage = tracelog{}

func (tracelog) Info() sdk.Info {
	return sdk.Info{Name: "tracelog", Version: "1.0.0", Phases: []sdk.Phase{sdk.PhaseData}}
}

func (tracelog) Configure(context.Context, sdk.Env, map[string]any) error { return nil }

func (tracelog) Check(_ context.Context, req *sdk.Request) (*sdk.Result, error) {
	slog.Info("tracelog: checked", "queue_id", req.QueueID, "session", req.SessionID,
		"subject", req.Message.Get("Subject"))
	return &sdk.Result{Verdict: sdk.VerdictPass}, nil
}
