package cfgval

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

func TestValues(t *testing.T) {
	known := []string{"name", "file"}
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
		{"whole open", func() (any, error) { return Whole(math.MaxInt32, 1, math.MaxInt) }, math.MaxInt32},
		{"bool", func() (any, error) { return Bool(true) }, true},
		{"bool string", func() (any, error) { return Bool("yes") }, nil},
		{"string", func() (any, error) { return String("x") }, "x"},
		{"string number", func() (any, error) { return String(1.0) }, nil},
		{"text", func() (any, error) { return Text("x") }, "x"},
		{"text int", func() (any, error) { return Text(419) }, "419"},
		{"text float", func() (any, error) { return Text(1.5) }, "1.5"},
		{"text bool", func() (any, error) { return Text(true) }, "true"},
		{"text list", func() (any, error) { return Text([]any{"x"}) }, nil},
		{"text null", func() (any, error) { return Text(nil) }, nil},
		{"duration", func() (any, error) { return Duration("90s") }, 90 * time.Second},
		{"duration days", func() (any, error) { return Duration("35d") }, 35 * 24 * time.Hour},
		{"duration days and hours", func() (any, error) { return Duration("1d12h") }, 36 * time.Hour},
		{"duration fractional days", func() (any, error) { return Duration("1.5d") }, 36 * time.Hour},
		{"duration two day parts", func() (any, error) { return Duration("1d1d") }, nil},
		{"duration zero", func() (any, error) { return Duration("0s") }, time.Duration(0)},
		{"whole at the upper bound", func() (any, error) { return Whole(10, 1, 10) }, 10},
		{"text int64", func() (any, error) { return Text(int64(7)) }, "7"},
		// Days are a plain decimal: no sign, no exponent.
		{"duration negative days", func() (any, error) { return Duration("-1d") }, nil},
		{"duration days with exponent", func() (any, error) { return Duration("1e2d") }, nil},
		// Past 2^62 ns (about 146 years) is out of range, with days alone
		// or with days and a rest.
		{"duration days out of range", func() (any, error) { return Duration("60000d") }, nil},
		{"duration days and rest out of range", func() (any, error) { return Duration("53375d25h") }, nil},
		{"duration negative", func() (any, error) { return Duration("-1s") }, nil},
		{"duration bad days", func() (any, error) { return Duration("xd") }, nil},
		{"duration number", func() (any, error) { return Duration(5.0) }, nil},
		{"positive duration", func() (any, error) { return PositiveDuration("1m") }, time.Minute},
		{"positive duration zero", func() (any, error) { return PositiveDuration("0s") }, nil},
		{"positive duration zero days", func() (any, error) { return PositiveDuration("0d") }, nil},
		{"positive duration negative", func() (any, error) { return PositiveDuration("-1s") }, nil},
		{"strings", func() (any, error) { return Strings([]any{"a", "b"}) }, []string{"a", "b"}},
		{"strings empty", func() (any, error) { return Strings([]any{}) }, []string{}},
		{"strings not a list", func() (any, error) { return Strings("a") }, nil},
		{"strings null", func() (any, error) { return Strings(nil) }, nil},
		{"strings with a number", func() (any, error) { return Strings([]any{"a", 1}) }, nil},
		{"strings with a null", func() (any, error) { return Strings([]any{"a", nil}) }, nil},
		{"texts", func() (any, error) { return Texts([]any{"a", 1, 1.5, false, nil}) }, []string{"a", "1", "1.5", "false"}},
		{"texts null", func() (any, error) { return Texts(nil) }, []string(nil)},
		{"texts not a list", func() (any, error) { return Texts("a") }, nil},
		{"texts with a map", func() (any, error) { return Texts([]any{map[string]any{}}) }, nil},
		{"map", func() (any, error) { return Map(map[string]any{"name": "a"}, known) }, map[string]any{"name": "a"}},
		{"map null", func() (any, error) { return Map(nil, known) }, map[string]any(nil)},
		{"map a list", func() (any, error) { return Map([]any{}, known) }, nil},
		{"maps", func() (any, error) { return Maps([]any{map[string]any{"file": "f"}}, known) },
			[]map[string]any{{"file": "f"}}},
		{"maps null", func() (any, error) { return Maps(nil, known) }, []map[string]any(nil)},
		{"maps null item", func() (any, error) { return Maps([]any{nil}, known) }, nil},
		{"maps a map", func() (any, error) { return Maps(map[string]any{}, known) }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.got()
			if tt.want == nil {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

// Errors name what came in words, never as a Go type.
func TestMessages(t *testing.T) {
	known := []string{"name", "file"}
	for _, tt := range []struct {
		name string
		err  func() error
		want string
	}{
		{"number string", func() error { _, err := Number("3"); return err }, `want a number, got "3"`},
		{"number list", func() error { _, err := Number([]any{1}); return err }, `want a number, got a list`},
		{"number null", func() error { _, err := Number(nil); return err }, `want a number, got nothing`},
		{"whole fraction", func() error { _, err := Whole(2.5, math.MinInt, math.MaxInt); return err },
			`want a whole number, got 2.5`},
		{"whole at least", func() error { _, err := Whole(0, 1, math.MaxInt); return err },
			`want a whole number of at least 1, got 0`},
		{"whole at most", func() error { _, err := Whole(5, math.MinInt, 4); return err },
			`want a whole number of at most 4, got 5`},
		{"whole range", func() error { _, err := Whole(10, 1024, 16<<20); return err },
			`want a whole number from 1024 to 16777216, got 10`},
		{"whole string", func() error { _, err := Whole("64k", 1024, 16<<20); return err },
			`want a whole number from 1024 to 16777216, got "64k"`},
		{"bool", func() error { _, err := Bool("yes"); return err }, `want true or false, got "yes"`},
		{"string", func() error { _, err := String(5); return err }, `want a string, got 5`},
		{"string map", func() error { _, err := String(map[string]any{"a": 1}); return err }, `want a string, got a map`},
		{"text list", func() error { _, err := Text([]any{"a"}); return err }, `want a string, got a list`},
		{"strings", func() error { _, err := Strings("x"); return err }, `want a list of strings, got "x"`},
		{"strings item", func() error { _, err := Strings([]any{"a", true}); return err }, `[1]: want a string, got true`},
		{"texts item", func() error { _, err := Texts([]any{nil, "a", []any{}}); return err }, `[2]: want a string, got a list`},
		{"duration", func() error { _, err := Duration([]any{"5s"}); return err },
			`want a duration such as "5s", "10m" or "35d", got a list`},
		{"positive duration", func() error { _, err := PositiveDuration("0s"); return err }, `want a positive duration, got 0s`},
		{"map", func() error { _, err := Map("x", known); return err }, `want {name, file}, got "x"`},
		{"maps", func() error { _, err := Maps("x", known); return err }, `want a list of {name, file}, got "x"`},
		{"maps item", func() error { _, err := Maps([]any{"x"}, known); return err }, `[0]: want {name, file}, got "x"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.err(); err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// Every reader has a Key form whose error starts with the key, so that the
// admin reading "stage x: config refused: ..." knows which line to fix.
func TestKeyForms(t *testing.T) {
	known := []string{"name"}
	for _, tt := range []struct {
		name string
		err  func() error
		want string
	}{
		{"number", func() error { _, err := Key("n").Number(true); return err }, "n: want a number, got true"},
		{"whole", func() error { _, err := Key("n").Whole(0, 1, math.MaxInt); return err },
			"n: want a whole number of at least 1, got 0"},
		{"bool", func() error { _, err := Key("on").Bool(1); return err }, "on: want true or false, got 1"},
		{"string", func() error { _, err := Key("greeting").String(5); return err }, "greeting: want a string, got 5"},
		{"text", func() error { _, err := Key("greeting").Text(nil); return err }, "greeting: want a string, got nothing"},
		{"strings", func() error { _, err := Key("words").Strings("x"); return err }, `words: want a list of strings, got "x"`},
		{"strings item", func() error { _, err := Key("words").Strings([]any{"a", true}); return err },
			"words[1]: want a string, got true"},
		{"texts item", func() error { _, err := Key("args").Texts([]any{"a", map[string]any{}}); return err },
			"args[1]: want a string, got a map"},
		{"map", func() error { _, err := Key("limits").Map([]any{1}, known); return err }, "limits: want {name}, got a list"},
		{"maps item", func() error { _, err := Key("lists").Maps([]any{"a"}, known); return err },
			`lists[0]: want {name}, got "a"`},
		{"duration", func() error { _, err := Key("timeout").Duration("soon"); return err }, `timeout: bad duration "soon"`},
		{"positive duration", func() error { _, err := Key("timeout").PositiveDuration("0s"); return err },
			"timeout: want a positive duration, got 0s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.err(); err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	if n, err := Key("n").Whole(7, 0, 9); err != nil || n != 7 {
		t.Errorf("got %v %v", n, err)
	}
	if l, err := Key("words").Texts([]any{"a", 2}); err != nil || !reflect.DeepEqual(l, []string{"a", "2"}) {
		t.Errorf("got %q, %v", l, err)
	}
}

// Set leaves dst alone for a null value, so a key left empty keeps its
// default, and on an error.
func TestSet(t *testing.T) {
	d := 5 * time.Second
	if err := Set(&d, nil, Key("t").Duration); err != nil || d != 5*time.Second {
		t.Errorf("null: %v, %v", d, err)
	}
	if err := Set(&d, "soon", Key("t").Duration); err == nil || d != 5*time.Second {
		t.Errorf("bad: %v, %v", d, err)
	}
	if err := Set(&d, "1m", Key("t").Duration); err != nil || d != time.Minute {
		t.Errorf("good: %v, %v", d, err)
	}
	l := []string{"default"}
	if err := Set(&l, []any{}, Texts); err != nil || len(l) != 0 {
		t.Errorf("empty list: %q, %v", l, err)
	}
}

func TestUnknownKey(t *testing.T) {
	known := []string{"lists", "headers", "score", "max_tags"}
	for _, tt := range []struct{ key, want string }{
		{"lsits", `unknown key "lsits" (want lists, headers, score, max_tags) (did you mean "lists"?)`},
		{"list", `unknown key "list" (want lists, headers, score, max_tags) (did you mean "lists"?)`},
		{"Score", `unknown key "Score" (want lists, headers, score, max_tags) (did you mean "score"?)`},
		{"MAX_TAGS", `unknown key "MAX_TAGS" (want lists, headers, score, max_tags) (did you mean "max_tags"?)`},
		{"heades", `unknown key "heades" (want lists, headers, score, max_tags) (did you mean "headers"?)`},
		{"bogus", `unknown key "bogus" (want lists, headers, score, max_tags)`},
		{"scr", `unknown key "scr" (want lists, headers, score, max_tags) (did you mean "score"?)`},
		{"sc", `unknown key "sc" (want lists, headers, score, max_tags)`}, // three edits
		{"x", `unknown key "x" (want lists, headers, score, max_tags)`},
		{"", `unknown key "" (want lists, headers, score, max_tags)`},
	} {
		t.Run(tt.key, func(t *testing.T) {
			if err := UnknownKey(tt.key, known); err.Error() != tt.want {
				t.Errorf("got\n %v\nwant\n %s", err, tt.want)
			}
		})
	}
	// Of two near misses the nearer wins; of two as near, the first.
	if got := nearest("ab", []string{"abcd", "abc"}); got != "abc" {
		t.Errorf("nearest: %q", got)
	}
	if got := nearest("ac", []string{"ab", "ad"}); got != "ab" {
		t.Errorf("nearest tie: %q", got)
	}
	// A short key is not all edits away from a short known one: "x" is
	// no misspelling of "ip".
	if got := Nearest("x", []string{"ip", "port"}); got != "" {
		t.Errorf("nearest of a one-letter key: %q", got)
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3},
		{"lsits", "lists", 2}, {"timeout", "timeout", 0}, {"flaw", "lawn", 2}, {"héllo", "hello", 1},
	} {
		if got := distance([]rune(tt.a), []rune(tt.b)); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// Each reads the keys in order and stops at the first error, so that the
// same mistake is reported each time.
func TestEach(t *testing.T) {
	var seen []string
	m := map[string]any{"c": 3, "a": 1, "b": "x", "d": 4}
	err := Each(m, func(k string, v any) error {
		seen = append(seen, k)
		_, err := Key(k).Number(v)
		return err
	})
	if err == nil || err.Error() != `b: want a number, got "x"` || !reflect.DeepEqual(seen, []string{"a", "b"}) {
		t.Errorf("got %v after %q", err, seen)
	}
	if err := Each(nil, func(string, any) error { return errors.New("called") }); err != nil {
		t.Errorf("nil map: %v", err)
	}
}
