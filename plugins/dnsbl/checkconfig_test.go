package dnsbl

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
		c("ok", nil, map[string]any{"zones": []any{"bl.example.test", map[string]any{"zone": "wl.example.test", "allow": true}}}, ""),
		c("unknown key", nil, map[string]any{"zones": []any{"a.test"}, "treshold": 1},
			`unknown key "treshold" (want zones, threshold, timeout, max_ttl, negative_ttl, cache_size, check_private) (did you mean "threshold"?)`),
		c("unknown zone key", nil, map[string]any{"zones": []any{map[string]any{"zone": "a.test", "wieght": 1}}},
			`zones[0]: unknown key "wieght" (want zone, weight, codes, allow, domain, ipv6) (did you mean "weight"?)`),
		c("no zones", nil, nil, "zones: at least one zone is needed"),
	})
}
