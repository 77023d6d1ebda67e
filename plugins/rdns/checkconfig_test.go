package rdns

import (
	"testing"

	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// TestCheckConfig: CheckConfig refuses what Configure refuses, with the
// same words, and leaves nothing behind: no goroutine, no file (the
// state file of a running gateway is not even opened).
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	c := plugintest.Case
	plugintest.CheckConfigs(t, New, dir, []plugintest.ConfigCase{
		c("ok", nil, map[string]any{"timeout": "1s", "dynamic_patterns": []any{`^ip\d`}}, ""),
		c("unknown key", nil, map[string]any{"timout": "1s"},
			`unknown key "timout" (want timeout, max_names, dynamic_patterns) (did you mean "timeout"?)`),
		c("bad regex", nil, map[string]any{"dynamic_patterns": []any{"("}}, `dynamic_patterns: bad pattern "("`),
		c("zero names", nil, map[string]any{"max_names": 0}, "max_names: want a whole number of at least 1, got 0"),
	})
}
