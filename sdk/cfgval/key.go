package cfgval

import (
	"fmt"
	"time"
)

// Key reads the value of one key; its errors start with the key, and with
// the index of the bad item for a list ("words[1]: want a string, got 5").
// Nested keys are written as paths: Key("lists[0].patterns").
type Key string

// wrap puts the key in front of err; nil stays nil.
func (k Key) wrap(err error) error {
	switch e := err.(type) {
	case nil:
		return nil
	case itemError:
		return fmt.Errorf("%s[%d]: %w", string(k), e.at, e.err)
	}
	return fmt.Errorf("%s: %w", string(k), err)
}

// Number is Number with the key in its error.
func (k Key) Number(v any) (float64, error) { f, err := Number(v); return f, k.wrap(err) }

// Whole is Whole with the key in its error.
func (k Key) Whole(v any, lo, hi int) (int, error) { n, err := Whole(v, lo, hi); return n, k.wrap(err) }

// Bool is Bool with the key in its error.
func (k Key) Bool(v any) (bool, error) { b, err := Bool(v); return b, k.wrap(err) }

// String is String with the key in its error.
func (k Key) String(v any) (string, error) { s, err := String(v); return s, k.wrap(err) }

// Text is Text with the key in its error.
func (k Key) Text(v any) (string, error) { s, err := Text(v); return s, k.wrap(err) }

// Strings is Strings with the key in its error.
func (k Key) Strings(v any) ([]string, error) { l, err := Strings(v); return l, k.wrap(err) }

// Texts is Texts with the key in its error.
func (k Key) Texts(v any) ([]string, error) { l, err := Texts(v); return l, k.wrap(err) }

// Map is Map with the key in its error.
func (k Key) Map(v any, known []string) (map[string]any, error) {
	m, err := Map(v, known)
	return m, k.wrap(err)
}

// Maps is Maps with the key in its error.
func (k Key) Maps(v any, known []string) ([]map[string]any, error) {
	l, err := Maps(v, known)
	return l, k.wrap(err)
}

// Duration is Duration with the key in its error.
func (k Key) Duration(v any) (time.Duration, error) { d, err := Duration(v); return d, k.wrap(err) }

// PositiveDuration is PositiveDuration with the key in its error.
func (k Key) PositiveDuration(v any) (time.Duration, error) {
	d, err := PositiveDuration(v)
	return d, k.wrap(err)
}
