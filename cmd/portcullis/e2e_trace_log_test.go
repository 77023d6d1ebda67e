package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// Parsing the gateway's log for TestE2ETrace: strictly, so that a line an
// attacker's text could have broken or forged fails the test.

// logLine is one parsed line of the gateway's log.
type logLine struct {
	raw   string
	attrs map[string]string
}

func (l logLine) get(k string) string { return l.attrs[k] }

func (l logLine) String() string { return l.raw }

// parseText parses a line of slog's text format strictly: key=value pairs
// separated by one space, a value quoted (Go syntax) when it needs to be.
func parseText(line string) (map[string]string, error) {
	attrs := map[string]string{}
	rest := line
	for rest != "" {
		key, tail, ok := strings.Cut(rest, "=")
		if !ok || key == "" || strings.ContainsAny(key, ` "`) {
			return nil, fmt.Errorf("no key=value at %q", rest)
		}
		var val string
		if strings.HasPrefix(tail, `"`) {
			q, err := strconv.QuotedPrefix(tail)
			if err != nil {
				return nil, fmt.Errorf("bad quoted value at %q: %v", tail, err)
			}
			val, _ = strconv.Unquote(q)
			tail = tail[len(q):]
		} else {
			i := strings.IndexByte(tail, ' ')
			if i < 0 {
				i = len(tail)
			}
			val, tail = tail[:i], tail[i:]
			if strings.ContainsAny(val, `"=`) {
				return nil, fmt.Errorf("unquoted value %q", val)
			}
		}
		if _, dup := attrs[key]; dup {
			return nil, fmt.Errorf("key %s twice", key)
		}
		attrs[key] = val
		if tail != "" && !strings.HasPrefix(tail, " ") {
			return nil, fmt.Errorf("no space after value at %q", tail)
		}
		rest = strings.TrimPrefix(tail, " ")
	}
	return attrs, nil
}

// parseJSON parses a line of slog's JSON format; values become their text.
func parseJSON(line string) (map[string]string, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		return nil, err
	}
	attrs := map[string]string{}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			attrs[k] = v
		default:
			b, _ := json.Marshal(v)
			attrs[k] = string(b)
		}
	}
	return attrs, nil
}

// parseLog parses every line, failing the test on one that does not parse.
func parseLog(t *testing.T, logs string, jsonFormat bool) []logLine {
	t.Helper()
	var out []logLine
	for _, raw := range strings.Split(strings.TrimRight(logs, "\n"), "\n") {
		parse := parseText
		if jsonFormat {
			parse = parseJSON
		}
		attrs, err := parse(raw)
		if err != nil {
			t.Errorf("log line does not parse (%v): %s", err, raw)
			continue
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := attrs[k]; !ok {
				t.Errorf("log line without %s: %s", k, raw)
			}
		}
		out = append(out, logLine{raw: raw, attrs: attrs})
	}
	return out
}

// parseLogQuiet is parseLog without failing on bad lines (for polling).
func parseLogQuiet(logs string, jsonFormat bool) []logLine {
	var out []logLine
	for _, raw := range strings.Split(strings.TrimRight(logs, "\n"), "\n") {
		parse := parseText
		if jsonFormat {
			parse = parseJSON
		}
		if attrs, err := parse(raw); err == nil {
			out = append(out, logLine{raw: raw, attrs: attrs})
		}
	}
	return out
}

// has reports whether l has every key=value pair of kv.
func (l logLine) has(kv ...string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if v, ok := l.attrs[kv[i]]; !ok || v != kv[i+1] {
			return false
		}
	}
	return true
}
