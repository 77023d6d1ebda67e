package antivirus

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/sdk/cfgval"
)

// config is the stage's `config:` map, validated (the keys: see the
// package comment).
type config struct {
	Clamd     string
	Command   []string
	TempDir   string // absolute, or "" for the system's
	Timeout   time.Duration
	ChunkSize int
}

var configKeys = []string{"clamd", "command", "temp_dir", "timeout", "chunk_size"}

// parseConfig reads and validates the config map; defaults live here.
// Keys are read in order, so that of two mistakes the same one is
// reported each time. Errors start with the key: the host reports them as
// "stage NAME: config refused: ...", without a file or line.
func parseConfig(raw map[string]any, dir string) (config, error) {
	cfg := config{Timeout: 30 * time.Second, ChunkSize: 64 << 10}
	err := cfgval.Each(raw, func(k string, v any) (err error) {
		key := cfgval.Key(k)
		switch k {
		case "clamd":
			return cfgval.Set(&cfg.Clamd, v, key.Text)
		case "command":
			cfg.Command, err = key.Texts(v)
			return err
		case "temp_dir":
			return cfgval.Set(&cfg.TempDir, v, key.Text)
		case "timeout":
			return cfgval.Set(&cfg.Timeout, v, key.PositiveDuration)
		case "chunk_size":
			return cfgval.Set(&cfg.ChunkSize, v, func(v any) (int, error) { return key.Whole(v, 1<<10, 16<<20) })
		}
		return cfgval.UnknownKey(k, configKeys)
	})
	if err != nil {
		return cfg, err
	}
	switch {
	case (cfg.Clamd == "") == (len(cfg.Command) == 0):
		return cfg, fmt.Errorf("exactly one of clamd and command is required")
	case len(cfg.Command) > 0 && !slices.ContainsFunc(cfg.Command, func(a string) bool { return strings.Contains(a, "{file}") }):
		return cfg, fmt.Errorf("command: no {file} placeholder for the file to scan")
	}
	if cfg.TempDir != "" && !filepath.IsAbs(cfg.TempDir) {
		cfg.TempDir = filepath.Join(dir, cfg.TempDir)
	}
	return cfg, nil
}

// clamdAddress reads "unix:PATH", "tcp:HOST:PORT", a path, or HOST:PORT.
func clamdAddress(s, dir string) (network, addr string) {
	switch {
	case strings.HasPrefix(s, "unix:"):
		s = strings.TrimPrefix(s, "unix:")
	case strings.HasPrefix(s, "tcp:"):
		return "tcp", strings.TrimPrefix(s, "tcp:")
	case !strings.Contains(s, "/") && strings.Contains(s, ":"):
		return "tcp", s
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(dir, s)
	}
	return "unix", s
}
