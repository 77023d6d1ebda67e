package cfgval

import (
	"fmt"
	"strings"
)

// Strings reads a list of strings (a YAML sequence). An error names the
// position of the first item that is not a string, counting from 0.
func Strings(v any) ([]string, error) { return list(v, "a list of strings", String, false) }

// Texts reads a list of Text, as a command line or a list of patterns is
// written: numbers and booleans are taken as written, null items are
// skipped, and a null list is an empty one.
func Texts(v any) ([]string, error) { return list(v, "a list of strings", Text, true) }

// Map reads a map; null is an empty one. known names the keys it may
// have, for the error ("want {name, file}, got a list"): Map does not
// check them, the caller's switch reports a key it does not know with
// UnknownKey.
func Map(v any, known []string) (map[string]any, error) {
	switch m := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return m, nil
	}
	return nil, want(shape(known), v)
}

// Maps reads a list of maps, such as a list of {name, file} entries, as
// Map reads one; null is an empty list, but a null item is refused.
func Maps(v any, known []string) ([]map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	item := func(v any) (map[string]any, error) {
		if v == nil {
			return nil, want(shape(known), v)
		}
		return Map(v, known)
	}
	return list(v, "a list of "+shape(known), item, false)
}

// shape writes a map's keys for an error: "{name, file}".
func shape(known []string) string { return "{" + strings.Join(known, ", ") + "}" }

// itemError is the error about one item of a list; Key puts the key
// before the index ("words[1]: ...").
type itemError struct {
	at  int
	err error
}

func (e itemError) Error() string { return fmt.Sprintf("[%d]: %v", e.at, e.err) }
func (e itemError) Unwrap() error { return e.err }

// list reads a YAML sequence item by item. skipNull drops null items and
// makes a null list an empty one.
func list[T any](v any, what string, item func(any) (T, error), skipNull bool) ([]T, error) {
	l, ok := v.([]any)
	if !ok {
		if v == nil && skipNull {
			return nil, nil
		}
		return nil, want(what, v)
	}
	out := make([]T, 0, len(l))
	for i, e := range l {
		if e == nil && skipNull {
			continue
		}
		x, err := item(e)
		if err != nil {
			return nil, itemError{i, err}
		}
		out = append(out, x)
	}
	return out, nil
}
