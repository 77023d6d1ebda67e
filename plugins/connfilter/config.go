package connfilter

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/portcullis-mta/portcullis/sdk/cfgval"
)

// config is the stage's `config:` map, validated.
type config struct {
	deny, allow    listConfig
	filters        []string // files in the original server's filter-line format
	countries      []string // RIR delegated-stats files
	reloadInterval time.Duration
}

type listConfig struct {
	entries []string
	files   []string
}

const defaultReloadInterval = 5 * time.Second

var (
	configKeys = []string{"deny", "allow", "filters", "countries", "reload_interval"}
	listKeys   = []string{"entries", "files"}
)

// parseConfig reads the config map; keys are read in sorted order, so
// that of two mistakes the same one is reported each time.
func parseConfig(raw map[string]any, dir string) (config, error) {
	cfg := config{reloadInterval: defaultReloadInterval}
	err := cfgval.Each(raw, func(k string, v any) (err error) {
		switch k {
		case "deny":
			cfg.deny, err = parseListConfig(k, v, dir)
		case "allow":
			cfg.allow, err = parseListConfig(k, v, dir)
		case "filters":
			cfg.filters, err = paths(k, v, dir)
		case "countries":
			cfg.countries, err = paths(k, v, dir)
		case "reload_interval":
			cfg.reloadInterval, err = cfgval.Key(k).Duration(v)
		default:
			err = cfgval.UnknownKey(k, configKeys)
		}
		return err
	})
	if err != nil {
		return config{}, err
	}
	return cfg, nil
}

// parseListConfig accepts a list of entries, or {entries: [...], files: [...]}.
func parseListConfig(key string, v any, dir string) (listConfig, error) {
	var lc listConfig
	switch v := v.(type) {
	case []any:
		var err error
		lc.entries, err = strs(key, v)
		return lc, err
	case map[string]any:
		err := cfgval.Each(v, func(k string, x any) (err error) {
			switch k {
			case "entries":
				lc.entries, err = strs(key+".entries", x)
			case "files":
				lc.files, err = paths(key+".files", x, dir)
			default:
				err = fmt.Errorf("%s: %w", key, cfgval.UnknownKey(k, listKeys))
			}
			return err
		})
		return lc, err
	case nil:
		return lc, nil
	}
	return lc, fmt.Errorf("%s: want a list of entries or {entries, files}", key)
}

func strs(key string, v any) ([]string, error) {
	if s, ok := v.(string); ok {
		return []string{s}, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a list of strings", key)
	}
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("%s: want strings, got %v", key, x)
		}
		out = append(out, s)
	}
	return out, nil
}

func paths(key string, v any, dir string) ([]string, error) {
	l, err := strs(key, v)
	for i, p := range l {
		if !filepath.IsAbs(p) {
			l[i] = filepath.Join(dir, p)
		}
	}
	return l, err
}

// files lists every file the config reads, for change detection.
func (c config) files() []string {
	out := append([]string{}, c.deny.files...)
	out = append(out, c.allow.files...)
	out = append(out, c.filters...)
	return append(out, c.countries...)
}

// fileStamp identifies a file's version by size and modification time,
// and by the file itself: a file replaced by rename (vim, sed -i, a
// Kubernetes ConfigMap's ..data symlink swap) can keep the old size and
// mtime but is another inode.
type fileStamp struct {
	size int64
	mod  time.Time
	fi   os.FileInfo // nil when the file could not be stat'ed
}

func (a fileStamp) same(b fileStamp) bool {
	if a.fi == nil || b.fi == nil {
		return a.fi == nil && b.fi == nil
	}
	return a.size == b.size && a.mod.Equal(b.mod) && os.SameFile(a.fi, b.fi)
}

func stamps(files []string) map[string]fileStamp {
	m := make(map[string]fileStamp, len(files))
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			m[f] = fileStamp{fi.Size(), fi.ModTime(), fi}
		} else {
			m[f] = fileStamp{size: -1}
		}
	}
	return m
}
