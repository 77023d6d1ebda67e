package plugintest

import (
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

// StageConfig returns the `config:` map of the first stage in the rule file
// at path whose `plugin:` is plugin, as the gateway would pass it to
// Configure, so that a shipped example rule file is checked against the
// stage's own validation. It fails the test when there is no such stage.
func StageConfig(tb testing.TB, path, plugin string) map[string]any {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var file struct {
		Stages []struct {
			Plugin string         `yaml:"plugin"`
			Config map[string]any `yaml:"config"`
		} `yaml:"stages"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	for _, s := range file.Stages {
		if s.Plugin == plugin {
			return s.Config
		}
	}
	tb.Fatalf("no stage with plugin %s in %s", plugin, path)
	return nil
}
