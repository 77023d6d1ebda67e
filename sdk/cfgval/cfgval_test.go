package cfgval

import (
	"strings"
	"testing"
	"time"
)

func TestValues(t *testing.T) {
	for _, tt := range []struct {
		name string
		got  func() (any, error)
		want any // nil: an error is wanted
	}{
		{"number float", func() (any, error) { return Number(0.5) }, 0.5},
		{"number int", func() (any, error) { return Number(3) }, 3.0},
		{"number string", func() (any, error) { return Number("3") }, nil},
		{"whole", func() (any, error) { return Whole(5.0, 1, 10) }, 5},
		{"whole fraction", func() (any, error) { return Whole(5.5, 1, 10) }, nil},
		{"whole range", func() (any, error) { return Whole(11, 1, 10) }, nil},
		{"bool", func() (any, error) { return Bool(true) }, true},
		{"bool string", func() (any, error) { return Bool("yes") }, nil},
		{"string", func() (any, error) { return String("x") }, "x"},
		{"string number", func() (any, error) { return String(1.0) }, nil},
		{"duration", func() (any, error) { return Duration("90s") }, 90 * time.Second},
		{"duration days", func() (any, error) { return Duration("35d") }, 35 * 24 * time.Hour},
		{"duration negative", func() (any, error) { return Duration("-1s") }, nil},
		{"duration bad days", func() (any, error) { return Duration("xd") }, nil},
		{"duration number", func() (any, error) { return Duration(5.0) }, nil},
		{"strings", func() (any, error) { l, err := Strings([]any{"a", "b"}); return strings.Join(l, ","), err }, "a,b"},
		{"strings empty", func() (any, error) { l, err := Strings([]any{}); return len(l), err }, 0},
		{"strings not a list", func() (any, error) { return Strings("a") }, nil},
		{"strings with a number", func() (any, error) { return Strings([]any{"a", 1}) }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.got()
			if tt.want == nil {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestKeyNamesTheKey(t *testing.T) {
	if _, err := Key("timeout").Duration("soon"); err == nil || err.Error() != `timeout: bad duration "soon"` {
		t.Fatalf("got %v", err)
	}
	if n, err := Key("n").Whole(7, 0, 9); err != nil || n != 7 {
		t.Fatalf("got %v %v", n, err)
	}
}

// Every reader has a Key form whose error starts with the key, so that the
// admin reading "stage x: config refused: ..." knows which line to fix.
func TestKeyForms(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  func() error
		want string
	}{
		{"string", func() error { _, err := Key("greeting").String(5); return err }, "greeting: want a string, got int"},
		{"strings", func() error { _, err := Key("words").Strings("x"); return err }, "words: want a list of strings, got string"},
		{"strings item", func() error { _, err := Key("words").Strings([]any{"a", true}); return err }, "words[1]: want a string, got bool"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.err(); err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	if s, err := Key("greeting").String("hi"); err != nil || s != "hi" {
		t.Errorf("got %q, %v", s, err)
	}
	if l, err := Key("words").Strings([]any{"a"}); err != nil || len(l) != 1 || l[0] != "a" {
		t.Errorf("got %q, %v", l, err)
	}
}
