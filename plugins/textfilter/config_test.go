package textfilter

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// oneList is a valid lists value, for cases about other keys.
func oneList() []any { return []any{map[string]any{"name": "a", "patterns": []any{"x"}}} }

// TestConfigMessages: a refused config names the key, as the other stages'
// errors do, and never a Go type or a line of a re-marshalled map; the
// subject stage does not call itself textfilter.
func TestConfigMessages(t *testing.T) {
	tests := []struct {
		name    string
		subject bool
		cfg     map[string]any
		want    string
	}{
		{"unknown key", false, map[string]any{"lsits": oneList()},
			`unknown key "lsits" (want lists, headers, score, threshold, reload_interval, reload_settle, max_tags, max_text_bytes) (did you mean "lists"?)`},
		{"unknown key, subject", true, map[string]any{"lists": oneList(), "header": []any{"From"}},
			`unknown key "header" (want lists, score, threshold, reload_interval, reload_settle, max_tags)`},
		{"unknown list key", false, map[string]any{"lists": []any{map[string]any{"name": "a", "pattern": []any{"x"}}}},
			`lists[0]: unknown key "pattern" (want name, file, patterns, weight) (did you mean "patterns"?)`},
		{"lists not a list", false, map[string]any{"lists": "spam.txt"},
			`lists: want a list of {name, file, patterns, weight}, got "spam.txt"`},
		{"list not a map", false, map[string]any{"lists": []any{"spam.txt"}},
			`lists[0]: want {name, file, patterns, weight}, got "spam.txt"`},
		{"patterns not a list", false, map[string]any{"lists": []any{map[string]any{"name": "a", "patterns": "x"}}},
			`lists[0].patterns: want a list of strings, got "x"`},
		{"pattern a map", false, map[string]any{"lists": []any{map[string]any{"name": "a", "patterns": []any{"x", map[string]any{"y": 1}}}}},
			`lists[0].patterns[1]: want a string, got a map`},
		{"weight a string", false, map[string]any{"lists": []any{map[string]any{"name": "a", "patterns": []any{"x"}, "weight": "2"}}},
			`lists[0].weight: want a number, got "2"`},
		{"headers a string", false, map[string]any{"lists": oneList(), "headers": "From"},
			`headers: want a list of strings, got "From"`},
		{"threshold a list", false, map[string]any{"lists": oneList(), "threshold": []any{1}},
			`threshold: want a number, got a list`},
		{"interval a number", false, map[string]any{"lists": oneList(), "reload_interval": 5},
			`reload_interval: want a duration such as "5s", "10m" or "35d", got 5`},
		{"settle negative", false, map[string]any{"lists": oneList(), "reload_settle": "-1s"},
			`reload_settle: bad duration "-1s"`},
		{"max_tags fraction", false, map[string]any{"lists": oneList(), "max_tags": 2.5},
			`max_tags: want a whole number of at least 1, got 2.5`},
		{"max_tags zero", false, map[string]any{"lists": oneList(), "max_tags": 0},
			`max_tags: want a whole number of at least 1, got 0`},
		{"max_text_bytes too small", false, map[string]any{"lists": oneList(), "max_text_bytes": 100},
			`max_text_bytes: want a whole number from 1024 to 67108864, got 100`},
		{"max_text_bytes, subject", true, map[string]any{"lists": oneList(), "max_text_bytes": 4096},
			`unknown key "max_text_bytes" (want lists, score, threshold, reload_interval, reload_settle, max_tags)`},
		{"score", false, map[string]any{"lists": oneList(), "score": "max"},
			`score: "max" is neither weight nor count`},
		{"no lists", false, map[string]any{}, `lists: at least one list is required`},
		{"headers, subject", true, map[string]any{"lists": oneList(), "headers": []any{"From"}},
			`headers: the subject stage matches the Subject only`},
		{"no name", false, map[string]any{"lists": []any{map[string]any{"patterns": []any{"x"}}}},
			`lists[0]: name is required, without ':' or spaces`},
		{"nothing to match", false, map[string]any{"lists": []any{map[string]any{"name": "a"}}},
			`lists[0] (a): file or patterns is required`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := NewText()
			if tc.subject {
				st = NewSubject()
			}
			if err := st.Configure(context.Background(), sdk.Env{ConfigDir: "testdata"}, tc.cfg); fmt.Sprint(err) != tc.want {
				t.Errorf("error\n %v\nwant\n %s", err, tc.want)
			}
		})
	}
}

// TestConfigAccepted: configs the yaml-decoding parser took are still taken,
// with the same meaning: scalars where strings go (a list named 419, a
// numeric pattern), null values (a key left empty keeps its default, a
// null pattern is none), a
// whole float where a whole number goes.
func TestConfigAccepted(t *testing.T) {
	tests := []struct {
		name    string
		subject bool
		cfg     map[string]any
		want    config
	}{
		{"subject, no headers", true, map[string]any{"lists": oneList(), "headers": []any{}},
			config{Lists: []listConfig{{Name: "a", Patterns: []string{"x"}, Weight: 1}}, Headers: []string{},
				Score: "weight", Threshold: 1, ReloadInterval: 5 * time.Second, ReloadSettle: 2 * time.Second, MaxTags: 20,
				MaxTextBytes: defaultMaxTextBytes}},
		{"scalars as strings", false,
			map[string]any{"lists": []any{map[string]any{"name": 419, "patterns": []any{"x", 2024, 1.5, true, nil}}},
				"headers": []any{"From", 1}, "score": "count"},
			config{Lists: []listConfig{{Name: "419", Patterns: []string{"x", "2024", "1.5", "true"}, Weight: 1}},
				Headers: []string{"From", "1"}, Score: "count", Threshold: 1, ReloadInterval: 5 * time.Second,
				ReloadSettle: 2 * time.Second, MaxTags: 20, MaxTextBytes: defaultMaxTextBytes}},
		{"nulls keep defaults", false,
			map[string]any{"lists": []any{map[string]any{"name": "a", "patterns": []any{"x"}, "weight": nil, "file": nil}},
				"headers": nil, "score": nil, "threshold": nil, "reload_interval": nil, "reload_settle": nil, "max_tags": nil},
			config{Lists: []listConfig{{Name: "a", Patterns: []string{"x"}, Weight: 1}},
				Score: "weight", Threshold: 1, ReloadInterval: 5 * time.Second, ReloadSettle: 2 * time.Second, MaxTags: 20,
				MaxTextBytes: defaultMaxTextBytes}},
		{"every key", false,
			map[string]any{"lists": []any{map[string]any{"name": "a", "file": "l.txt", "patterns": []any{"x"}, "weight": 2.5}},
				"headers": []any{"Reply-To"}, "score": "weight", "threshold": 3, "reload_interval": "1m", "reload_settle": "0s",
				"max_tags": 5.0, "max_text_bytes": 65536},
			config{Lists: []listConfig{{Name: "a", File: "l.txt", Patterns: []string{"x"}, Weight: 2.5}},
				Headers: []string{"Reply-To"}, Score: "weight", Threshold: 3, ReloadInterval: time.Minute, MaxTags: 5,
				MaxTextBytes: 65536}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := parseConfig(tc.cfg, tc.subject); err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("config\n %+v, %v\nwant\n %+v", got, err, tc.want)
			}
		})
	}
}

// notPlain matches what no config error should show the admin: a Go type
// name or a line number of a re-marshalled map.
var notPlain = regexp.MustCompile(`line |textfilter\.|interface|yaml`)

// TestConfigMessagesPlain: whatever the mistake, no Go type name and no
// line number of a re-marshalled map reaches the admin.
func TestConfigMessagesPlain(t *testing.T) {
	for _, v := range []any{"x", 1, 2.5, true, []any{1}, map[string]any{"a": 1}} {
		for _, k := range []string{"lists", "headers", "score", "threshold", "reload_interval", "max_tags", "max_text_bytes", "bogus"} {
			cfg := map[string]any{"lists": oneList(), k: v}
			err := NewText().Configure(context.Background(), sdk.Env{ConfigDir: "testdata"}, cfg)
			if err != nil && notPlain.MatchString(err.Error()) {
				t.Errorf("%s: %v: %v", k, v, err)
			}
		}
	}
}
