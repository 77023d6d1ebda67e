package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/pluginhost"
	"github.com/portcullis-mta/portcullis/sdk"
)

type nopStage struct{}

func (nopStage) Info() sdk.Info { return sdk.Info{Name: "nop", Phases: []sdk.Phase{sdk.PhaseConnect}} }
func (nopStage) Configure(context.Context, sdk.Env, map[string]any) error {
	return nil
}
func (nopStage) Check(context.Context, *sdk.Request) (*sdk.Result, error) { return &sdk.Result{}, nil }

func TestPluginCommand(t *testing.T) {
	builtinStages["zz-test-nop"] = func() sdk.Stage { return nopStage{} }
	t.Cleanup(func() { delete(builtinStages, "zz-test-nop") })
	var served sdk.Stage
	servePlugin = func(s sdk.Stage) { served = s }
	t.Cleanup(func() { servePlugin = sdk.Serve })
	savedHost := startedByHost
	startedByHost = func() bool { return true }
	t.Cleanup(func() { startedByHost = savedHost })

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
		wantServed bool
	}{
		{"no name", []string{"plugin"}, exitUsage, "usage: portcullis plugin NAME", false},
		{"two names", []string{"plugin", "a", "b"}, exitUsage, "usage: portcullis plugin NAME", false},
		{"unknown", []string{"plugin", "nosuch"}, exitUsage, `unknown built-in stage "nosuch"`, false},
		{"lists names", []string{"plugin", "nosuch"}, exitUsage, "zz-test-nop", false},
		{"serves", []string{"plugin", "zz-test-nop"}, exitOK, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			served = nil
			var stdout, stderr bytes.Buffer
			code := dispatch(tt.args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.wantCode, tt.wantStderr)
			}
			if (served != nil) != tt.wantServed {
				t.Errorf("served %v, want served=%v", served, tt.wantServed)
			}
		})
	}
}

// TestPluginCommandBinary runs the real binary: by hand, outside a host, a
// built-in refuses with exit 1; an unknown one is bad usage; under the
// plugin host every built-in starts, describes itself and answers Configure.
func TestPluginCommandBinary(t *testing.T) {
	bin := portcullisBinary(t)
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		// The hint names the built-in as a rule file does, not the binary's path.
		{[]string{"plugin", "bayes"}, exitFailed, "Name it as the plugin of a stage in a rule file (plugin: bayes).\n"},
		{[]string{"plugin", "connfilter"}, exitFailed, "(plugin: connfilter)"},
		{[]string{"plugin", "nosuch"}, exitUsage, "dnsbl"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, tt.args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr.String(), tt.wantCode, tt.wantErr)
		}
	}

	// Every built-in speaks the protocol: it starts, passes the handshake
	// and Info checks, and answers Configure (an empty config may be refused).
	h := pluginhost.New(pluginhost.Options{Self: bin, IsBuiltin: isBuiltin,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer h.Close()
	for name := range builtinStages {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			sp := pluginhost.Spec{Name: "s-" + name, Plugin: name, Config: map[string]any{},
				Env: sdk.Env{StatePath: filepath.Join(t.TempDir(), "state."+name+".db")}}
			err := h.Load(ctx, []pluginhost.Spec{sp})
			if err != nil {
				if !strings.Contains(err.Error(), "config refused") {
					t.Fatalf("built-in %s did not get as far as its config: %v", name, err)
				}
				return
			}
			s, _ := h.Stage(sp.Name)
			if info := s.Info(); info.Name == "" || len(info.Phases) == 0 {
				t.Errorf("built-in %s: Info %+v", name, info)
			}
		})
	}
}
