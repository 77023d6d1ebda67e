// Package cfgval reads the values of a stage's config map (sdk.Stage
// Configure), as they arrive from the rule file's YAML through the wire's
// JSON: whole numbers as int, others as float64, durations as strings.
// The functions' errors name what was wanted and what came; Key's methods
// put the key in front:
//
//	words, err := cfgval.Key("words").Strings(cfg["words"]) // "words[1]: want a string, got int"
//
// The key matters because a refused config reaches the admin without a
// position: `portcullis run`, `scan` and a reload report "stage NAME:
// config refused: " and the error text (`portcullis check` does not start
// plugins, so it does not see it).
package cfgval

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Number reads any numeric value.
func Number(v any) (float64, error) {
	switch n := v.(type) {
	case float64:
		return n, nil
	case float32:
		return float64(n), nil
	case int:
		return float64(n), nil
	case int64:
		return float64(n), nil
	case uint64:
		return float64(n), nil
	}
	return 0, fmt.Errorf("want a number, got %T", v)
}

// Whole reads a whole number in [lo, hi].
func Whole(v any, lo, hi int) (int, error) {
	f, err := Number(v)
	if err != nil {
		return 0, err
	}
	if f != float64(int(f)) {
		return 0, fmt.Errorf("want a whole number, got %v", v)
	}
	if n := int(f); n < lo || n > hi {
		return 0, fmt.Errorf("%d is not in %d..%d", n, lo, hi)
	}
	return int(f), nil
}

// Bool reads true or false.
func Bool(v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("want true or false, got %v", v)
	}
	return b, nil
}

// String reads a string.
func String(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("want a string, got %T", v)
	}
	return s, nil
}

// Strings reads a list of strings (a YAML sequence). An error names the
// position of the first item that is not a string, counting from 0.
func Strings(v any) ([]string, error) {
	l, at, err := stringList(v)
	if at >= 0 {
		return nil, fmt.Errorf("[%d]: %w", at, err)
	}
	return l, err
}

// stringList is Strings, with the index of the bad item apart (-1: none).
func stringList(v any) ([]string, int, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, -1, fmt.Errorf("want a list of strings, got %T", v)
	}
	out := make([]string, len(l))
	for i, e := range l {
		s, err := String(e)
		if err != nil {
			return nil, i, err
		}
		out[i] = s
	}
	return out, -1, nil
}

// Duration reads a Go duration ("90s", "5m", "1h30m") or whole days
// ("35d"). Negative durations are refused.
func Duration(v any) (time.Duration, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("want a duration such as \"5s\", \"10m\" or \"35d\", got %v", v)
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 100_000 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return d, nil
}

// Key reads the value of one key; its errors start with the key.
type Key string

func (k Key) wrap(err error) error { return fmt.Errorf("%s: %w", string(k), err) }

// Number is Number with the key in its error.
func (k Key) Number(v any) (float64, error) {
	f, err := Number(v)
	if err != nil {
		return 0, k.wrap(err)
	}
	return f, nil
}

// Whole is Whole with the key in its error.
func (k Key) Whole(v any, lo, hi int) (int, error) {
	n, err := Whole(v, lo, hi)
	if err != nil {
		return 0, k.wrap(err)
	}
	return n, nil
}

// Bool is Bool with the key in its error.
func (k Key) Bool(v any) (bool, error) {
	b, err := Bool(v)
	if err != nil {
		return false, k.wrap(err)
	}
	return b, nil
}

// String is String with the key in its error.
func (k Key) String(v any) (string, error) {
	s, err := String(v)
	if err != nil {
		return "", k.wrap(err)
	}
	return s, nil
}

// Strings is Strings with the key in its error ("words[2]: want a string").
func (k Key) Strings(v any) ([]string, error) {
	l, at, err := stringList(v)
	switch {
	case at >= 0:
		return nil, fmt.Errorf("%s[%d]: %w", string(k), at, err)
	case err != nil:
		return nil, k.wrap(err)
	}
	return l, nil
}

// Duration is Duration with the key in its error.
func (k Key) Duration(v any) (time.Duration, error) {
	d, err := Duration(v)
	if err != nil {
		return 0, k.wrap(err)
	}
	return d, nil
}
