package bayes

import (
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestExampleConfig checks the stage config in examples/rules/bayes.yaml
// against ParseConfig, so the shipped example cannot drift from the code.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../../examples/rules/bayes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Stages []struct {
			Name, Plugin string
			Config       map[string]any
		}
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	for _, s := range file.Stages {
		if s.Plugin != "bayes" {
			continue
		}
		cfg, err := ParseConfig(s.Config)
		if err != nil {
			t.Fatalf("stage %s: %v", s.Name, err)
		}
		if def := DefaultConfig(); cfg != def {
			t.Errorf("example config %+v differs from the defaults %+v it documents", cfg, def)
		}
		return
	}
	t.Fatal("no bayes stage in examples/rules/bayes.yaml")
}
