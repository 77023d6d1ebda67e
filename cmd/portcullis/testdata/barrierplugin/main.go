// Command barrierplugin is a stage whose CheckConfig waits for its peers,
// for the test that `portcullis check` asks plugin executables at once:
// config {dir: D, peers: N} makes CheckConfig create a file of its own in
// D, then wait until D holds N files (or the call's deadline). Asked one
// after the other, the first would wait for the others in vain.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

func main() { sdk.Serve(&barrier{}) }

type barrier struct{}

var (
	_ sdk.Stage         = barrier{}
	_ sdk.ConfigChecker = barrier{}
)

func (barrier) Info() sdk.Info {
	return sdk.Info{Name: "barrier", Version: "1.0.0", Phases: []sdk.Phase{sdk.PhaseData}}
}

func (barrier) Configure(context.Context, sdk.Env, map[string]any) error { return nil }

func (barrier) Check(context.Context, *sdk.Request) (*sdk.Result, error) {
	return &sdk.Result{Verdict: sdk.VerdictPass}, nil
}

func (barrier) CheckConfig(ctx context.Context, env sdk.Env, cfg map[string]any) error {
	dir, _ := cfg["dir"].(string)
	var peers int
	switch n := cfg["peers"].(type) { // as the config crossed the wire
	case int:
		peers = n
	case int64:
		peers = int(n)
	case float64:
		peers = int(n)
	}
	if dir == "" || peers <= 0 {
		return fmt.Errorf("want dir (a string) and peers (a positive integer), got %v", cfg)
	}
	f, err := os.CreateTemp(dir, env.StageName+"-*")
	if err != nil {
		return err
	}
	f.Close()
	for {
		names, err := filepath.Glob(filepath.Join(dir, "*"))
		if err != nil {
			return err
		}
		if len(names) >= peers {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d peers asked at once: %w", len(names), peers, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
