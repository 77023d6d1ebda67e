package msgauth

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
		c("ok", nil, map[string]any{"timeout": "5s", "helo_spf": false}, ""),
		c("unknown key", nil, map[string]any{"helo_sfp": true},
			`unknown key "helo_sfp" (want authserv_id, timeout, max_signatures, helo_spf) (did you mean "helo_spf"?)`),
		c("bad authserv-id", nil, map[string]any{"authserv_id": "a b"}, `authserv_id: "a b" is not a valid authserv-id`),
		c("zero timeout", nil, map[string]any{"timeout": "0s"}, "timeout: want a positive duration"),
	})
}
