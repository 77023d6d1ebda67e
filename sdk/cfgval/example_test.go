package cfgval_test

import (
	"fmt"
	"math"
	"time"

	"github.com/portcullis-mta/portcullis/sdk/cfgval"
)

// A stage's Configure reads its map with defaults in place: a key left
// empty keeps its default, and errors start with the key.
func Example() {
	type config struct {
		Timeout time.Duration
		Words   []string
		Max     int
	}
	known := []string{"timeout", "words", "max"}
	parse := func(raw map[string]any) (config, error) {
		c := config{Timeout: 5 * time.Second, Max: 10}
		err := cfgval.Each(raw, func(k string, v any) (err error) {
			key := cfgval.Key(k)
			switch k {
			case "timeout":
				return cfgval.Set(&c.Timeout, v, key.PositiveDuration)
			case "words":
				c.Words, err = key.Texts(v)
				return err
			case "max":
				return cfgval.Set(&c.Max, v, func(v any) (int, error) { return key.Whole(v, 1, math.MaxInt) })
			}
			return cfgval.UnknownKey(k, known)
		})
		return c, err
	}
	fmt.Println(parse(map[string]any{"timeout": nil, "words": []any{"spam", 419}}))
	fmt.Println(parse(map[string]any{"max": 0}))
	fmt.Println(parse(map[string]any{"timout": "1s"}))
	// Output:
	// {5s [spam 419] 10} <nil>
	// {5s [] 10} max: want a whole number of at least 1, got 0
	// {5s [] 10} unknown key "timout" (want timeout, words, max) (did you mean "timeout"?)
}
