package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

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
