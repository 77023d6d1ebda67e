package execfilter

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Limits bound the inspection of one message's archives.
type Limits struct {
	MaxEntries    int           `yaml:"max_entries"`     // entries per archive
	MaxEntryBytes int64         `yaml:"max_entry_bytes"` // decompressed bytes per entry
	MaxTotalBytes int64         `yaml:"max_total_bytes"` // decompressed bytes per archive
	MaxRatio      int64         `yaml:"max_ratio"`       // decompressed/compressed, past 1 MiB
	Timeout       time.Duration `yaml:"timeout"`         // whole message
}

// DefaultLimits stop a bomb within a fraction of a second and a few MiB.
func DefaultLimits() Limits {
	return Limits{MaxEntries: 1000, MaxEntryBytes: 25 << 20, MaxTotalBytes: 64 << 20, MaxRatio: 100, Timeout: 5 * time.Second}
}

// defaultExtensions are names Windows runs or scripts (Microsoft's
// "blocked attachments in Outlook" list, trimmed of the obscure), with
// OneNote notebooks (.one), a malware carrier since 2023 whose embedded
// files run at a click, and Internet shortcuts (.url), which open remote
// executables.
var defaultExtensions = []string{
	"exe", "com", "scr", "pif", "bat", "cmd", "cpl", "dll", "msi", "msp", "mst", "lnk", "hta", "jar",
	"js", "jse", "vbs", "vbe", "wsf", "wsh", "wsc", "ps1", "psm1", "reg", "scf", "inf", "msc", "gadget", "application",
	"sh", "appref-ms", "settingcontent-ms", "iso", "img", "vhd", "vhdx", "xll", "chm", "one", "url",
}

// defaultContentTypes are media types of executables and scripts.
var defaultContentTypes = []string{
	"application/x-msdownload", "application/x-msdos-program", "application/x-dosexec", "application/x-executable",
	"application/x-ms-installer", "application/x-msi", "application/hta", "application/x-sh", "application/x-shellscript",
	"text/x-sh", "application/x-bat", "application/x-javascript", "application/javascript", "text/javascript",
	"text/vbscript", "application/x-vbscript", "application/java-archive", "application/x-elf", "application/x-mach-binary",
}

type config struct {
	Extensions   []string    `yaml:"extensions"`
	ContentTypes []string    `yaml:"content_types"`
	Signatures   []sigConfig `yaml:"signatures"`
	Limits       Limits      `yaml:"limits"`

	sigs     []signature
	extSet   map[string]bool
	ctypeSet map[string]bool
}

type sigConfig struct {
	Name   string `yaml:"name"`
	Hex    string `yaml:"hex"`
	Offset *int64 `yaml:"offset"`
}

// parseConfig decodes and validates the config map; defaults live here.
func parseConfig(raw map[string]any) (*config, error) {
	cfg := &config{Extensions: defaultExtensions, ContentTypes: defaultContentTypes, Limits: DefaultLimits()}
	if len(raw) > 0 {
		b, err := yaml.Marshal(raw)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	l := cfg.Limits
	if l.MaxEntries <= 0 || l.MaxEntryBytes <= 0 || l.MaxTotalBytes <= 0 || l.MaxRatio <= 0 || l.Timeout <= 0 {
		return nil, fmt.Errorf("config: limits must all be positive")
	}
	cfg.extSet, cfg.ctypeSet = map[string]bool{}, map[string]bool{}
	for _, e := range cfg.Extensions {
		cfg.extSet[strings.ToLower(strings.TrimPrefix(e, "."))] = true
	}
	for _, c := range cfg.ContentTypes {
		cfg.ctypeSet[strings.ToLower(c)] = true
	}
	seen := map[string]bool{}
	for i, sc := range cfg.Signatures {
		if sc.Name == "" || seen[sc.Name] || strings.ContainsAny(sc.Name, " :") {
			return nil, fmt.Errorf("config: signatures[%d]: a unique name without spaces or ':' is required", i)
		}
		seen[sc.Name] = true
		s, err := parseSignature(sc.Name, sc.Hex, sc.Offset)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		cfg.sigs = append(cfg.sigs, s)
	}
	return cfg, nil
}
