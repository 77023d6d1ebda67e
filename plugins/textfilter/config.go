package textfilter

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/sdk/cfgval"
)

// config is the stage's `config:` map, typed (the keys: see the package
// comment).
type config struct {
	Lists          []listConfig
	Headers        []string // TEXT only
	Score          string   // "weight" or "count"
	Threshold      float64
	ReloadInterval time.Duration
	ReloadSettle   time.Duration
	MaxTags        int
	MaxTextBytes   int // TEXT only: bytes of each text matched
}

// defaultMaxTextBytes is how much of each text (a text part, the Subject,
// a header) is matched: 1 MiB. Matching costs about 75 ms of CPU a MiB,
// in a plugin that runs on one CPU, and a 20 MB text part took 1.5 s: four
// such messages at once ran every call past a 5 s timeout, and a call the
// gateway had given up on went on matching (a regular expression cannot be
// stopped half way). Real text is far shorter; Postfix's body_checks read
// 50 KB (body_checks_size_limit) and SpamAssassin's body rules 50 KB a
// part (body_part_scan_size). What is cut is tagged (text.limit.bytes).
const defaultMaxTextBytes = 1 << 20

// listConfig is one entry of lists.
type listConfig struct {
	Name     string
	File     string
	Patterns []string
	Weight   float64 // 0 in the map: 1
}

var (
	textKeys    = []string{"lists", "headers", "score", "threshold", "reload_interval", "reload_settle", "max_tags", "max_text_bytes"}
	subjectKeys = []string{"lists", "score", "threshold", "reload_interval", "reload_settle", "max_tags"}
	listKeys    = []string{"name", "file", "patterns", "weight"}
)

// parseConfig reads and validates the config map; defaults live here.
// Keys are read in order, so that of two mistakes the same one is
// reported each time. Errors start with the key: the host reports them as
// "stage NAME: config refused: ...", without a file or line.
func parseConfig(raw map[string]any, subjectOnly bool) (config, error) {
	cfg := config{Score: "weight", Threshold: 1, ReloadInterval: 5 * time.Second, ReloadSettle: 2 * time.Second, MaxTags: 20,
		MaxTextBytes: defaultMaxTextBytes}
	err := cfgval.Each(raw, func(k string, v any) error { return cfg.set(k, v, subjectOnly) })
	if err != nil {
		return cfg, err
	}
	switch {
	case len(cfg.Lists) == 0:
		return cfg, fmt.Errorf("lists: at least one list is required")
	case cfg.Score != "weight" && cfg.Score != "count":
		return cfg, fmt.Errorf("score: %q is neither weight nor count", cfg.Score)
	}
	for i, l := range cfg.Lists {
		if l.Name == "" || strings.ContainsAny(l.Name, ": ") {
			return cfg, fmt.Errorf("lists[%d]: name is required, without ':' or spaces", i)
		}
		if l.File == "" && len(l.Patterns) == 0 {
			return cfg, fmt.Errorf("lists[%d] (%s): file or patterns is required", i, l.Name)
		}
		if l.Weight == 0 {
			cfg.Lists[i].Weight = 1
		}
	}
	return cfg, nil
}

// set reads one key of the map.
func (c *config) set(k string, v any, subjectOnly bool) (err error) {
	key := cfgval.Key(k)
	switch k {
	case "lists":
		return c.setLists(v)
	case "headers":
		if c.Headers, err = key.Texts(v); err != nil {
			return err
		}
		if subjectOnly && len(c.Headers) > 0 {
			return fmt.Errorf("headers: the subject stage matches the Subject only")
		}
		return nil
	case "score":
		return cfgval.Set(&c.Score, v, key.Text)
	case "threshold":
		return cfgval.Set(&c.Threshold, v, key.Number)
	case "reload_interval":
		return cfgval.Set(&c.ReloadInterval, v, key.Duration)
	case "reload_settle":
		return cfgval.Set(&c.ReloadSettle, v, key.Duration)
	case "max_tags":
		return cfgval.Set(&c.MaxTags, v, func(v any) (int, error) { return key.Whole(v, 1, math.MaxInt) })
	case "max_text_bytes":
		if !subjectOnly {
			return cfgval.Set(&c.MaxTextBytes, v, func(v any) (int, error) { return key.Whole(v, 1024, 64<<20) })
		}
	}
	if subjectOnly {
		return cfgval.UnknownKey(k, subjectKeys)
	}
	return cfgval.UnknownKey(k, textKeys)
}

func (c *config) setLists(v any) error {
	l, err := cfgval.Key("lists").Maps(v, listKeys)
	if err != nil {
		return err
	}
	c.Lists = make([]listConfig, len(l))
	for i, m := range l {
		if err := c.Lists[i].set(fmt.Sprintf("lists[%d]", i), m); err != nil {
			return err
		}
	}
	return nil
}

// set reads one entry of lists; at is its place ("lists[2]").
func (l *listConfig) set(at string, m map[string]any) error {
	return cfgval.Each(m, func(k string, v any) (err error) {
		key := cfgval.Key(at + "." + k)
		switch k {
		case "name":
			return cfgval.Set(&l.Name, v, key.Text)
		case "file":
			return cfgval.Set(&l.File, v, key.Text)
		case "patterns":
			l.Patterns, err = key.Texts(v)
			return err
		case "weight":
			return cfgval.Set(&l.Weight, v, key.Number)
		}
		return fmt.Errorf("%s: %w", at, cfgval.UnknownKey(k, listKeys))
	})
}
