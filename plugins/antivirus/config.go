package antivirus

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

type config struct {
	Clamd     string        `yaml:"clamd"`
	Command   []string      `yaml:"command"`
	TempDir   string        `yaml:"temp_dir"`
	Timeout   time.Duration `yaml:"timeout"`
	ChunkSize int           `yaml:"chunk_size"`
}

// parseConfig decodes and validates the config map; defaults live here.
func parseConfig(raw map[string]any, dir string) (config, error) {
	cfg := config{Timeout: 30 * time.Second, ChunkSize: 64 << 10}
	b, err := yaml.Marshal(raw)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && len(raw) > 0 {
		return cfg, fmt.Errorf("config: %w", err)
	}
	switch {
	case (cfg.Clamd == "") == (len(cfg.Command) == 0):
		return cfg, fmt.Errorf("config: exactly one of clamd and command is required")
	case len(cfg.Command) > 0 && !slices.ContainsFunc(cfg.Command, func(a string) bool { return strings.Contains(a, "{file}") }):
		return cfg, fmt.Errorf("config: command: no {file} placeholder for the file to scan")
	case cfg.Timeout <= 0:
		return cfg, fmt.Errorf("config: timeout must be positive")
	case cfg.ChunkSize < 1024 || cfg.ChunkSize > 16<<20:
		return cfg, fmt.Errorf("config: chunk_size must be between 1 KiB and 16 MiB")
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
