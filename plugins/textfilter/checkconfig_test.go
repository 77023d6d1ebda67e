package textfilter

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
		"lists/spam.txt":  "viagra\nre:casino\\s+bonus\n",
		"lists/badre.txt": "ok\nre:(unclosed\n",
	})
	c := plugintest.Case
	plugintest.CheckConfigs(t, NewText, dir, []plugintest.ConfigCase{
		c("ok", nil, map[string]any{"lists": []any{map[string]any{"name": "spam", "file": "lists/spam.txt"}}}, ""),
		c("missing list", nil, map[string]any{"lists": []any{map[string]any{"name": "spam", "file": "lists/none.txt"}}},
			"list spam: open "+filepath.Join(dir, "lists/none.txt")+": no such file or directory"),
		c("bad regex in file", nil, map[string]any{"lists": []any{map[string]any{"name": "spam", "file": "lists/badre.txt"}}},
			`spam:2: bad regular expression "(unclosed"`),
		c("bad regex inline", nil, map[string]any{"lists": []any{map[string]any{"name": "spam", "patterns": []any{"re:a[b"}}}},
			`bad regular expression "a[b"`),
		c("unknown key", nil, map[string]any{"lsits": []any{}}, `unknown key "lsits"`),
	})
}
