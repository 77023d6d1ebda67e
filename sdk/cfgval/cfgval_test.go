package cfgval

import (
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
