package connfilter

import (
	"path/filepath"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// TestCheckConfig: CheckConfig refuses what Configure refuses, with the
// same words, and leaves nothing behind: no goroutine, no file (the
// state file of a running gateway is not even opened).
func TestCheckConfig(t *testing.T) {
	dir := plugintest.ConfigDir(t, map[string]string{
		"lists/deny.txt": "203.0.113.5\n*.dyn.example\n",
		"lists/bad.txt":  "203.0.113.300\n",
	})
	c := plugintest.Case
	plugintest.CheckConfigs(t, New, dir, []plugintest.ConfigCase{
		c("ok", nil, map[string]any{"deny": map[string]any{"files": []any{"lists/deny.txt"}}, "allow": []any{"192.0.2.1"}}, ""),
		c("unknown key", nil, map[string]any{"dney": []any{"1.2.3.4"}},
			`unknown key "dney" (want deny, allow, filters, countries, reload_interval) (did you mean "deny"?)`),
		c("unknown list key", nil, map[string]any{"deny": map[string]any{"file": []any{"lists/deny.txt"}}},
			`deny: unknown key "file" (want entries, files) (did you mean "files"?)`),
		c("missing files", nil, map[string]any{"deny": map[string]any{"files": []any{"lists/none.txt"}}, "filters": []any{"old.txt"}},
			"no such file: "+filepath.Join(dir, "lists/none.txt")+" (deny.files), "+filepath.Join(dir, "old.txt")+" (filters)"),
		c("bad line", nil, map[string]any{"allow": map[string]any{"files": []any{"lists/bad.txt"}}}, "bad.txt:1:"),
	})
}
