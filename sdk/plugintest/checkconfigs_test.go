package plugintest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// faultyStage's CheckConfig does what config["fault"] says: what
// CheckConfigs is there to catch.
type faultyStage struct{ echoStage }

var block = make(chan struct{})

func (s *faultyStage) Configure(ctx context.Context, env sdk.Env, cfg map[string]any) error {
	if env.Hostname == "" {
		return errors.New("no hostname")
	}
	if cfg["fault"] == "words" {
		return errors.New("bad config: words")
	}
	return s.echoStage.Configure(ctx, env, cfg)
}

func (*faultyStage) CheckConfig(_ context.Context, env sdk.Env, cfg map[string]any) error {
	if env.Hostname == "" {
		return errors.New("no hostname")
	}
	switch cfg["fault"] {
	case "goroutine":
		go func() { <-block }()
	case "write":
		return os.WriteFile(filepath.Join(env.ConfigDir, "left-behind"), nil, 0o600)
	case "words":
		return errors.New("bad config: in other words")
	}
	if v, ok := cfg["fail"]; ok {
		return errors.New("bad config: " + v.(string))
	}
	return nil
}

// TestCheckConfigsCatches: CheckConfigs applies a case's Env, and fails a
// stage whose CheckConfig leaves a goroutine running, writes in the config
// directory, or refuses in other words than Configure (each run in a child
// process: the failure is the point).
func TestCheckConfigsCatches(t *testing.T) {
	if fault := os.Getenv("PLUGINTEST_FAULT"); fault != "" {
		want := ""
		if fault == "words" {
			want = "bad config"
		}
		plugintest.CheckConfigs(t, func() sdk.Stage { return &faultyStage{} }, t.TempDir(), []plugintest.ConfigCase{
			plugintest.Case("faulty", nil, map[string]any{"fault": fault}, want)})
		return
	}
	noHost := func(e sdk.Env) sdk.Env { e.Hostname = ""; return e }
	plugintest.CheckConfigs(t, func() sdk.Stage { return &faultyStage{} }, t.TempDir(), []plugintest.ConfigCase{
		plugintest.Case("env applied", noHost, map[string]any{}, "no hostname"),
	})
	for fault, want := range map[string]string{
		"goroutine": "CheckConfig left goroutines",
		"write":     "CheckConfig changed",
		"words":     "Configure: bad config: words; CheckConfig: bad config: in other words",
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCheckConfigsCatches$")
		cmd.Env = append(os.Environ(), "PLUGINTEST_FAULT="+fault)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("CheckConfigs on a stage that does %q: %v, output lacks %q:\n%s", fault, err, want, out)
		}
	}
}

// TestStageConfig: the config of the stage that names the plugin, not
// the first stage's.
func TestStageConfig(t *testing.T) {
	dir := plugintest.ConfigDir(t, map[string]string{"rules.yaml": `
stages:
  - {name: a, plugin: other, config: {n: 1}}
  - {name: b, plugin: mine, config: {n: 2}}
`})
	if cfg := plugintest.StageConfig(t, filepath.Join(dir, "rules.yaml"), "mine"); cfg["n"] != 2 {
		t.Errorf("config %v, want mine's", cfg)
	}
}
