// Package cfgval reads the values of a stage's config map (sdk.Stage
// Configure), as they arrive from the rule file's YAML through the wire's
// JSON: whole numbers as int, others as float64, durations as strings.
// The functions' errors name what was wanted and what came, in words
// rather than Go types ("got a list", "got \"x\"", "got 5"); Key's methods
// put the key in front:
//
//	words, err := cfgval.Key("words").Strings(cfg["words"]) // "words[1]: want a string, got 5"
//
// The key matters because a refused config reaches the admin without a
// position: `portcullis run`, `scan` and a reload report "stage NAME:
// config refused: " and the error text (`portcullis check` puts the
// position of the stage's config in front, for every stage that
// implements sdk.ConfigChecker, built-in or plugin executable). Each reads a map's keys in a fixed
// order, UnknownKey gives every stage the same words for a typo, and Set
// lets a key left empty keep its default:
//
//	err := cfgval.Each(cfg, func(k string, v any) error {
//		switch k {
//		case "timeout":
//			return cfgval.Set(&s.timeout, v, cfgval.Key(k).Duration)
//		}
//		return cfgval.UnknownKey(k, []string{"timeout"})
//	})
package cfgval

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
)

// describe names a value for an error: composites by their kind, since
// the whole list or map would say less than the word.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	case string:
		return strconv.Quote(v)
	}
	return fmt.Sprint(v)
}

// want is the error for v where what was wanted.
func want(what string, v any) error { return fmt.Errorf("want %s, got %s", what, describe(v)) }

// Set stores read(v) in dst, unless v is null: a key left empty in the
// rule file keeps the default dst holds. read is one of this package's
// readers, usually a Key method: Set(&c.Timeout, v, Key(k).Duration).
func Set[T any](dst *T, v any, read func(any) (T, error)) error {
	if v == nil {
		return nil
	}
	x, err := read(v)
	if err != nil {
		return err
	}
	*dst = x
	return nil
}

// Each calls read with each key of the map m and its value, in the keys'
// sorted order, and stops at the first error: of two mistakes, the same
// one is reported each time.
func Each(m map[string]any, read func(k string, v any) error) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if err := read(k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

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
	return 0, want("a number", v)
}

// Whole reads a whole number in [lo, hi]; math.MinInt or math.MaxInt
// leaves that side open ("want a whole number of at least 1, got 0").
func Whole(v any, lo, hi int) (int, error) {
	f, err := Number(v)
	if err != nil || f != float64(int(f)) || int(f) < lo || int(f) > hi {
		return 0, want(wholeIn(lo, hi), v)
	}
	return int(f), nil
}

// wholeIn says in words which whole numbers [lo, hi] holds.
func wholeIn(lo, hi int) string {
	switch {
	case lo == math.MinInt && hi == math.MaxInt:
		return "a whole number"
	case hi == math.MaxInt:
		return fmt.Sprintf("a whole number of at least %d", lo)
	case lo == math.MinInt:
		return fmt.Sprintf("a whole number of at most %d", hi)
	}
	return fmt.Sprintf("a whole number from %d to %d", lo, hi)
}

// Bool reads true or false.
func Bool(v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, want("true or false", v)
	}
	return b, nil
}

// String reads a string.
func String(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", want("a string", v)
	}
	return s, nil
}

// Text reads a string, taking a number or a boolean as written: YAML reads
// `name: 419` or `hex: 9000` as a number where the author meant text.
func Text(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	}
	return "", want("a string", v)
}

// durationWant is what Duration asks for.
const durationWant = `a duration such as "5s", "10m" or "35d"`

// Duration reads a duration as ParseDuration does: Go syntax ("90s",
// "5m", "1h30m") plus days ("35d", "1d12h", "1.5d"). Negative durations
// are refused.
func Duration(v any) (time.Duration, error) {
	s, ok := v.(string)
	if !ok {
		return 0, want(durationWant, v)
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return d, nil
}

// PositiveDuration reads a Duration above zero, for a timeout or an
// interval that must pass.
func PositiveDuration(v any) (time.Duration, error) {
	d, err := Duration(v)
	if err == nil && d == 0 {
		return 0, fmt.Errorf("want a positive duration, got %v", d)
	}
	return d, err
}
