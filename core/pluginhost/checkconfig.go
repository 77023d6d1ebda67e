package pluginhost

import (
	"context"
	"errors"
	"fmt"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
)

// ErrConfigRefused marks an error that is the plugin's refusal of its
// stage's config (Configure's or CheckConfig's), not a failure to start
// or reach it.
var ErrConfigRefused = errors.New("config refused")

// env is the Env the stage's plugin is given.
func (sp Spec) env() sdk.Env {
	env := sp.Env
	env.StageName = sp.Name
	return env
}

// CheckConfig starts spec's plugin, asks it to validate spec's config as
// Configure would without applying it (sdk.ConfigChecker), and stops it:
// what `portcullis check` does for a plugin executable. The error wraps
// ErrConfigRefused when the plugin refused the config, and
// hostrpc.ErrNoConfigCheck when the plugin cannot check one (its stage
// does not implement it, or its SDK predates the call); any other error
// says why the plugin could not be started or asked, as Load would.
func (h *Host) CheckConfig(ctx context.Context, sp Spec) error {
	h.load.Lock()
	if h.closed {
		h.load.Unlock()
		return ErrClosed
	}
	err := h.ensureDir()
	h.load.Unlock()
	if err != nil {
		return err
	}
	p, err := h.run(ctx, sp, false)
	if err != nil {
		return err
	}
	defer p.kill()
	err = p.rpc.CheckConfig(ctx, sp.env(), sp.Config)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, hostrpc.ErrNoConfigCheck):
		return fmt.Errorf("plugin %s: %w", sp.Plugin, err)
	case errors.Is(err, hostrpc.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("plugin %s: %w", sp.Plugin, err)
	}
	return fmt.Errorf("%w: %w", ErrConfigRefused, err)
}
