package pluginhost

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzSafeLogLine: whatever line a plugin writes to its stderr, what the
// filter hands go-plugin is one line within its buffer that go-plugin's
// hclog parser takes without panicking (it asserts @message, @level and
// @timestamp are strings, and the timestamp in its layout) and, when it is
// an entry, with a level hclog knows: a panic there took the whole gateway
// down, an unknown level lost the line.
func FuzzSafeLogLine(f *testing.F) {
	for _, s := range []string{
		`{"@level":"info","@message":5,"x":1}`,
		` {"@level":1,"@message":"m"}`,
		"\t{\"@timestamp\":7}",
		`{"@level":"WARNING","@message":"w","timestamp":"t"}`,
		`{"@message":"m","@timestamp":"2026-01-02T03:04:05.000000Z"}`,
		`{"a":` + strings.Repeat(`"x",`, 10) + `"y"}`,
		`{"@message":"` + strings.Repeat("b", 70<<10) + `"}`,
		"plain text", "", "null", "[1,2]", `{"@message":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		line = bytes.TrimRight(line, "\r\n")
		if bytes.ContainsAny(line, "\n") {
			return // one line at a time, as readLine gives them
		}
		out := safeLogLine(line)
		if len(out) == 0 || out[len(out)-1] != '\n' || bytes.Count(out, []byte("\n")) != 1 {
			t.Fatalf("not one line: %q", out)
		}
		if len(out) > maxLogLine+len(" [line cut: 99999999 bytes]") {
			t.Fatalf("a line of %d bytes", len(out))
		}
		var raw map[string]any
		if json.Unmarshal(out[:len(out)-1], &raw) != nil || raw == nil {
			return // raw text for go-plugin
		}
		for _, k := range []string{"@message", "@level", "@timestamp"} {
			if v, ok := raw[k]; ok {
				if _, isStr := v.(string); !isStr {
					t.Fatalf("%s is %T in %q: go-plugin panics", k, v, out)
				}
			}
		}
		if ts, ok := raw["@timestamp"].(string); ok {
			if _, err := time.Parse(hclogTime, ts); err != nil {
				t.Fatalf("@timestamp %q that go-plugin cannot parse: the line is dropped", ts)
			}
		}
		if lvl, ok := raw["@level"].(string); ok && hclogLevel(lvl) != strings.ToLower(strings.TrimSpace(lvl)) {
			t.Fatalf("@level %q hclog does not know: the line is lost", lvl)
		}
		if _, ok := raw["timestamp"]; ok {
			t.Fatalf("a plugin's own timestamp attribute left in %q", out)
		}
	})
}
