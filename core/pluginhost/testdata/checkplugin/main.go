// Command checkplugin serves faultstage with a CheckConfig, for the host's
// CheckConfig tests (faultplugin's stage cannot check configs).
package main

import (
	"context"
	"time"

	"github.com/portcullis-mta/portcullis/core/pluginhost/internal/faultstage"
	"github.com/portcullis-mta/portcullis/sdk"
)

type stage struct{ faultstage.Stage }

// CheckConfig accepts every config; with {check_sleep: duration} it first
// sleeps that long, ignoring ctx, as a wedged check would.
func (s *stage) CheckConfig(_ context.Context, _ sdk.Env, cfg map[string]any) error {
	if v, ok := cfg["check_sleep"].(string); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		time.Sleep(d)
	}
	return nil
}

func main() { sdk.Serve(&stage{}) }
