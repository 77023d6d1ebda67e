package antivirus

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
		c("clamd not asked", nil, map[string]any{"clamd": "unix:/nonexistent/clamd.sock"}, ""),
		c("tcp clamd not asked", nil, map[string]any{"clamd": "127.0.0.1:1"}, ""),
		c("unknown key", nil, map[string]any{"clamd": "/s", "Timout": "1s"},
			`unknown key "Timout" (want clamd, command, temp_dir, timeout, chunk_size) (did you mean "timeout"?)`),
		c("no scanner", nil, nil, "exactly one of clamd and command is required"),
		c("tcp clamd without port", nil, map[string]any{"clamd": "tcp:nohost"}, `clamd: "tcp:nohost": want tcp:HOST:PORT (a host and a port)`),
		c("missing scanner", nil, map[string]any{"command": []any{"/no/such/scanner", "{file}"}},
			"command[0]: /no/such/scanner: no such file or directory"),
	})
}
