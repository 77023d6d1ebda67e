package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"time"

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
	_, err := h.CheckConfigInfo(ctx, sp)
	return err
}

// CheckConfigInfo is CheckConfig that also returns what the plugin said
// about itself (its Info, checked as Load checks it, phases included),
// which `portcullis check` places the rules with. The Info is the zero
// one when the plugin could not be started or did not pass that check,
// and is valid with any other error: a refused config, a plugin that
// cannot check configs (hostrpc.ErrNoConfigCheck), or one that failed
// while checking.
func (h *Host) CheckConfigInfo(ctx context.Context, sp Spec) (sdk.Info, error) {
	h.load.Lock()
	if h.closed {
		h.load.Unlock()
		return sdk.Info{}, ErrClosed
	}
	err := h.ensureDir()
	h.load.Unlock()
	if err != nil {
		return sdk.Info{}, err
	}
	p, err := h.run(ctx, sp, false)
	if err != nil {
		return sdk.Info{}, err
	}
	defer p.kill()
	start := time.Now()
	err = p.rpc.CheckConfig(ctx, sp.env(), sp.Config)
	switch {
	case err == nil:
		return p.info, nil
	case errors.Is(err, hostrpc.ErrNoConfigCheck):
		return p.info, fmt.Errorf("plugin %s: %w", sp.Plugin, err)
	}
	if cause := cutCause(ctx, err); cause != nil {
		// Said as Configure's is: gRPC's words for it ("stream
		// terminated by RST_STREAM ...") tell an admin nothing.
		return p.info, fmt.Errorf("plugin %s: %w", sp.Plugin, &cutError{call: "CheckConfig", after: time.Since(start), cause: cause})
	}
	return p.info, fmt.Errorf("%w: %w", ErrConfigRefused, err)
}
