package execfilter

import (
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

// exampleConfig returns the config: map of the stage that uses plugin in
// examples/rules/content.yaml, so the shipped example is checked against
// the stage's own validation.
func exampleConfig(t *testing.T, plugin string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../../examples/rules/content.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Stages []struct {
			Plugin string         `yaml:"plugin"`
			Config map[string]any `yaml:"config"`
		} `yaml:"stages"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	for _, s := range file.Stages {
		if s.Plugin == plugin {
			return s.Config
		}
	}
	t.Fatalf("no %s stage in examples/rules/content.yaml", plugin)
	return nil
}
