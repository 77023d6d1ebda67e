package bayes

import (
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// TestCheckConfig: CheckConfig refuses what Configure refuses, with the
// same words, and leaves nothing behind: no goroutine, no file (the
// state file of a running gateway is not even opened).
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	c := plugintest.Case
	plugintest.CheckConfigs(t, New, dir, []plugintest.ConfigCase{
		c("ok", nil, map[string]any{"spam_cutoff": 0.95}, ""),
		c("no state", func(e sdk.Env) sdk.Env { e.StatePath = ""; return e }, nil, "bayes: no state file"),
		c("redis without state", func(e sdk.Env) sdk.Env { e.StatePath, e.RedisURL = "", "redis://x"; return e }, nil,
			"state.redis is not supported"),
		c("unknown key", nil, map[string]any{"spam_cutof": 0.9},
			`unknown key "spam_cutof" (want spam_cutoff, ham_cutoff, min_spam, min_ham, autolearn_guard, max_tokens, gram_weight) (did you mean "spam_cutoff"?)`),
		c("bad value", nil, map[string]any{"min_ham": -1}, "min_ham: want a whole number from 0 to 2147483647, got -1"),
	})
}
