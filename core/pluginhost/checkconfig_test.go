package pluginhost

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
)

// CheckConfig starts the plugin, asks it, and stops it again, whatever
// the answer: a config the plugin accepts, one it refuses (with its own
// words), a plugin that cannot check configs, one that is no plugin.
func TestCheckConfig(t *testing.T) {
	tests := []struct {
		name        string
		spec        Spec
		refused     bool
		noCheck     bool
		wantErr     string
		wantStopped bool
	}{
		{name: "accepted", spec: Spec{Name: "h", Plugin: helloBin(t), Config: map[string]any{"greeting": "hi"}}},
		{name: "refused", spec: Spec{Name: "h", Plugin: helloBin(t), Config: map[string]any{"greting": "hi"}},
			refused: true, wantErr: `config refused: unknown key "greting" (want greeting) (did you mean "greeting"?)`},
		{name: "stage without CheckConfig", spec: faultSpec(t, "f", map[string]any{"refuse": "not asked"}),
			noCheck: true, wantErr: "does not check configs"},
		{name: "not a plugin", spec: Spec{Name: "n", Plugin: "/bin/true"}, wantErr: "/bin/true"},
		{name: "missing", spec: Spec{Name: "m", Plugin: "/nonexistent/plugin"}, wantErr: "/nonexistent/plugin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newHost(t, Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := h.CheckConfig(ctx, tt.spec)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckConfig = %v, want nil", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckConfig = %v, want an error containing %q", err, tt.wantErr)
			}
			if got := errors.Is(err, ErrConfigRefused); got != tt.refused {
				t.Errorf("errors.Is(%v, ErrConfigRefused) = %v, want %v", err, got, tt.refused)
			}
			if got := errors.Is(err, hostrpc.ErrNoConfigCheck); got != tt.noCheck {
				t.Errorf("errors.Is(%v, ErrNoConfigCheck) = %v, want %v", err, got, tt.noCheck)
			}
			if _, ok := h.Stage(tt.spec.Name); ok {
				t.Errorf("stage %s is loaded after CheckConfig", tt.spec.Name)
			}
			if dir := h.SocketDir(); dir != "" {
				if left, _ := os.ReadDir(dir); len(left) != 0 {
					t.Errorf("socket directory keeps %d entries: the plugin was not stopped", len(left))
				}
			}
		})
	}
}

// A CheckConfig the plugin does not answer by the deadline is reported as
// Configure's is, by how long it ran, not in gRPC's words.
func TestCheckConfigTimeout(t *testing.T) {
	h, _ := newHost(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	plugin := checkBin(t)
	err := h.CheckConfig(ctx, Spec{Name: "c", Plugin: plugin, Config: map[string]any{"check_sleep": "1m"}})
	if err == nil {
		t.Fatal("CheckConfig of a plugin that hangs returned nil")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "plugin "+plugin+": CheckConfig timed out after ") || strings.Contains(msg, "RST_STREAM") ||
		strings.Contains(msg, "deadline") {
		t.Errorf("CheckConfig = %q, want \"plugin %s: CheckConfig timed out after ...\"", msg, plugin)
	}
	if errors.Is(err, ErrConfigRefused) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v: refused %v, deadline %v", err, errors.Is(err, ErrConfigRefused), errors.Is(err, context.DeadlineExceeded))
	}
}
