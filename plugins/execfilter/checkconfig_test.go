package execfilter

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
		c("ok", nil, map[string]any{"extensions": []any{"exe"}, "limits": map[string]any{"timeout": "2s"}}, ""),
		c("unknown key", nil, map[string]any{"limitz": 1},
			`unknown key "limitz" (want extensions, content_types, signatures, limits) (did you mean "limits"?)`),
	})
}
