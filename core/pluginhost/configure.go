package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
)

// ErrConfigureTimeout marks a Configure that did not end with the plugin's
// answer: it ran out of time (the caller's deadline: a load or reload,
// startTimeout at a restart, rollbackTimeout), or the call was cut (the
// plugin became unreachable, the caller gave up). It is not
// ErrConfigRefused: the plugin may still be applying that config, so its
// config is unknown and the host kills the process; a running stage's is
// restarted and configured with the stage's committed config (Spec).
var ErrConfigureTimeout = errors.New("Configure timed out")

// rollbackTimeout bounds the Configure that puts a stage's committed
// config back after a failed Reload. The Reload's own context may have
// run out already (another stage's Configure timed out), and the config
// must go back all the same. A variable for tests.
var rollbackTimeout = 30 * time.Second

// configureError is a Configure call that the plugin did not answer.
type configureError struct {
	after time.Duration
	cause error // context.DeadlineExceeded, context.Canceled or hostrpc.ErrUnavailable
}

func (e *configureError) Error() string {
	return (&cutError{call: "Configure", after: e.after, cause: e.cause}).Error()
}

// cutError is a call to a plugin that ended without its answer, said by
// how long it ran.
type cutError struct {
	call  string        // "Configure", "CheckConfig"
	after time.Duration // how long it ran
	cause error         // as for configureError
}

func (e *cutError) Error() string {
	after := formatDuration(e.after)
	switch {
	case errors.Is(e.cause, context.DeadlineExceeded):
		return fmt.Sprintf("%s timed out after %s", e.call, after)
	case errors.Is(e.cause, context.Canceled):
		return fmt.Sprintf("%s cancelled after %s", e.call, after)
	}
	return fmt.Sprintf("%s cut after %s: %v", e.call, after, e.cause)
}

func (e *cutError) Unwrap() error { return e.cause }

// Unwrap makes the error ErrConfigureTimeout and its cause for errors.Is.
func (e *configureError) Unwrap() []error { return []error{ErrConfigureTimeout, e.cause} }

// formatDuration keeps a duration readable in an error: whole seconds
// from 10s ("60s", not "1m0s"), tenths from 1s, milliseconds below.
func formatDuration(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%ds", d.Round(time.Second)/time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// callConfigure gives the plugin behind rpc sp's config. The error wraps
// ErrConfigRefused when the plugin answered with one, and
// ErrConfigureTimeout when the call ended without its answer; then the
// caller must kill the process, whose config is no longer known.
func callConfigure(ctx context.Context, rpc hostrpc.Client, sp Spec) error {
	if err := ctx.Err(); err != nil {
		// Not sent: the process's config is as it was.
		return fmt.Errorf("Configure not called: %w", err)
	}
	start := time.Now()
	err := rpc.Configure(ctx, sp.env(), sp.Config)
	if err == nil {
		return nil
	}
	if cause := cutCause(ctx, err); cause != nil {
		return &configureError{after: time.Since(start), cause: cause}
	}
	return fmt.Errorf("%w: %w", ErrConfigRefused, err)
}

// cutCause is why a call ended without the plugin's answer: ctx ended
// (the host may have killed the process at that moment, so that comes
// first), the plugin's side of the deadline ran out, or the plugin became
// unreachable; nil for the plugin's own error.
func cutCause(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	for _, c := range []error{context.DeadlineExceeded, context.Canceled, hostrpc.ErrUnavailable} {
		if errors.Is(err, c) {
			return c
		}
	}
	return nil
}
