// Command scanprobe is a stage for the scan tests: it runs at every phase
// and reports in its attrs what it was given (the connection, the envelope
// and the message's Received field and size), so that a test can compare
// what `portcullis scan` hands stages with what a session does. Run under
// a name ending in "-PHASE" (scanprobe-connect) it runs at that phase only,
// so that rules can read what it saw there.
package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/portcullis-mta/portcullis/sdk"
)

func main() { sdk.Serve(probe{}) }

type probe struct{}

var _ sdk.Stage = probe{}

func (probe) Info() sdk.Info {
	phases := sdk.Phases
	if _, ph, ok := strings.Cut(filepath.Base(os.Args[0]), "-"); ok {
		phases = []sdk.Phase{sdk.Phase(strings.TrimSuffix(ph, ".exe"))}
	}
	return sdk.Info{Name: "scanprobe", Version: "1.0.0", Phases: phases}
}

func (probe) Configure(context.Context, sdk.Env, map[string]any) error { return nil }

func (probe) Check(_ context.Context, req *sdk.Request) (*sdk.Result, error) {
	a := map[string]string{
		"ip": req.Conn.IP, "helo": req.Conn.HELO, "listener": req.Conn.Listener,
		"trusted": strconv.FormatBool(req.Conn.Trusted), "from": req.Envelope.From, "rcpt": req.Envelope.Rcpt,
		"rcpts": strings.Join(req.Envelope.Rcpts, ","),
	}
	if m := req.Message; m != nil {
		a["size"] = strconv.FormatInt(m.Size, 10)
		a["received"] = m.Get("Received")
		a["subject"] = m.Get("Subject")
		a["fields"] = strconv.Itoa(len(m.Header))
	}
	return &sdk.Result{Verdict: sdk.VerdictNeutral, Attrs: a}, nil
}
