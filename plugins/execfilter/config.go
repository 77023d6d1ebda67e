package execfilter

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/sdk/cfgval"
)

// Limits bound the inspection of one message's archives: the config's
// limits map, its keys in the comments.
type Limits struct {
	MaxEntries    int           // max_entries: entries per archive
	MaxEntryBytes int64         // max_entry_bytes: decompressed bytes per entry
	MaxTotalBytes int64         // max_total_bytes: decompressed bytes per archive
	MaxRatio      int64         // max_ratio: decompressed/compressed, past 1 MiB
	Timeout       time.Duration // timeout: whole message
}

// DefaultLimits stop a bomb within a fraction of a second and a few MiB.
func DefaultLimits() Limits {
	return Limits{MaxEntries: 1000, MaxEntryBytes: 25 << 20, MaxTotalBytes: 64 << 20, MaxRatio: 100, Timeout: 5 * time.Second}
}

// outlookBlocked is the table of Microsoft's support article "Blocked
// attachments in Outlook" (support.microsoft.com, article 434752e1-02d3-
// 4e90-9124-8b81e49a8519) as transcribed in 2023-2025, which holds the
// 2019 additions (Python, PowerShell, ClickOnce, Windows Sandbox, .xll,
// .xbap, .msu, .diagcab, ...); with those that 2019 announcement added to
// Outlook on the web beside them (.appcontent-ms, .settingcontent-ms,
// .cdxml, .pssc, .udl) and the two Microsoft added in July 2025
// (.library-ms, .search-ms). Files Outlook will not let its users open
// need not pass a gateway, and a script is judged by its name: its bytes
// say nothing.
var outlookBlocked = []string{
	"ade", "adp", "app", "appcontent-ms", "application", "appref-ms", "asp", "aspx", "asx",
	"bas", "bat", "bgi", "cab", "cdxml", "cer", "chm", "cmd", "cnt", "com", "cpl", "crt", "csh",
	"der", "diagcab", "exe", "fxp", "gadget", "grp", "hlp", "hpj", "hta", "htc",
	"inf", "ins", "iso", "isp", "its", "jar", "jnlp", "js", "jse", "ksh", "library-ms", "lnk",
	"mad", "maf", "mag", "mam", "maq", "mar", "mas", "mat", "mau", "mav", "maw", "mcf",
	"mda", "mdb", "mde", "mdt", "mdw", "mdz", "msc", "msh", "msh1", "msh2", "mshxml", "msh1xml", "msh2xml",
	"msi", "msp", "mst", "msu", "ops", "osd", "pcd", "pif", "pl", "plg", "prf", "prg", "printerexport",
	"ps1", "ps1xml", "ps2", "ps2xml", "psc1", "psc2", "psd1", "psdm1", "pssc", "pst",
	"py", "pyc", "pyo", "pyw", "pyz", "pyzw", "reg", "scf", "scr", "sct", "search-ms", "settingcontent-ms",
	"shb", "shs", "theme", "tmp", "udl", "url", "vb", "vbe", "vbp", "vbs", "vhd", "vhdx", "vsmacros", "vsw",
	"webpnp", "website", "ws", "wsb", "wsc", "wsf", "wsh", "xbap", "xll", "xnk",
}

// defaultExtensions are Outlook's blocked list and names it leaves out
// that Windows or a Unix shell runs as they are: OneNote notebooks (.one),
// a malware carrier since 2023 whose embedded files run at a click, disk
// images Windows mounts at a double click (.img), libraries (.dll),
// PowerShell modules (.psm1) and shell scripts (.sh), and three that
// phishing campaigns have used because Outlook lets them through: App
// Installer files that fetch and install a package (.appinstaller), Remote
// Desktop files that connect the reader's drives to the sender's server
// (.rdp, 2024), and search connectors that open a remote share in
// Explorer (.searchconnector-ms).
var defaultExtensions = append(slices.Clip(outlookBlocked), "one", "img", "dll", "psm1", "sh",
	"appinstaller", "rdp", "searchconnector-ms")

// defaultContentTypes are media types of executables and scripts.
var defaultContentTypes = []string{
	"application/x-msdownload", "application/x-msdos-program", "application/x-dosexec", "application/x-executable",
	"application/x-ms-installer", "application/x-msi", "application/hta", "application/x-sh", "application/x-shellscript",
	"text/x-sh", "application/x-bat", "application/x-javascript", "application/javascript", "text/javascript",
	"text/vbscript", "application/x-vbscript", "application/java-archive", "application/x-elf", "application/x-mach-binary",
}

// config is the stage's `config:` map, validated (the keys: see the
// package comment).
type config struct {
	Extensions   []string
	ContentTypes []string
	Limits       Limits

	sigs     []signature
	extSet   map[string]bool
	ctypeSet map[string]bool
}

var (
	configKeys    = []string{"extensions", "content_types", "signatures", "limits"}
	limitKeys     = []string{"max_entries", "max_entry_bytes", "max_total_bytes", "max_ratio", "timeout"}
	signatureKeys = []string{"name", "hex", "offset"}
)

// parseConfig reads and validates the config map; defaults live here.
// Keys are read in order, so that of two mistakes the same one is
// reported each time. Errors start with the key: the host reports them as
// "stage NAME: config refused: ...", without a file or line. A null list
// is an empty one; a null limit keeps its default.
func parseConfig(raw map[string]any) (*config, error) {
	cfg := &config{Extensions: defaultExtensions, ContentTypes: defaultContentTypes, Limits: DefaultLimits()}
	err := cfgval.Each(raw, func(k string, v any) (err error) {
		switch k {
		case "extensions":
			cfg.Extensions, err = cfgval.Key(k).Texts(v)
		case "content_types":
			cfg.ContentTypes, err = cfgval.Key(k).Texts(v)
		case "signatures":
			cfg.sigs, err = parseSignatures(v)
		case "limits":
			err = cfg.Limits.set(v)
		default:
			err = cfgval.UnknownKey(k, configKeys)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	cfg.extSet, cfg.ctypeSet = map[string]bool{}, map[string]bool{}
	for _, e := range cfg.Extensions {
		cfg.extSet[strings.ToLower(strings.TrimPrefix(e, "."))] = true
	}
	for _, c := range cfg.ContentTypes {
		cfg.ctypeSet[strings.ToLower(c)] = true
	}
	return cfg, nil
}

// set reads the limits map over the defaults.
func (l *Limits) set(v any) error {
	m, err := cfgval.Key("limits").Map(v, limitKeys)
	if err != nil {
		return err
	}
	return cfgval.Each(m, func(k string, v any) error {
		key := cfgval.Key("limits." + k)
		positive := func(v any) (int, error) { return key.Whole(v, 1, math.MaxInt) }
		positive64 := func(v any) (int64, error) { n, err := positive(v); return int64(n), err }
		switch k {
		case "max_entries":
			return cfgval.Set(&l.MaxEntries, v, positive)
		case "max_entry_bytes":
			return cfgval.Set(&l.MaxEntryBytes, v, positive64)
		case "max_total_bytes":
			return cfgval.Set(&l.MaxTotalBytes, v, positive64)
		case "max_ratio":
			return cfgval.Set(&l.MaxRatio, v, positive64)
		case "timeout":
			return cfgval.Set(&l.Timeout, v, key.PositiveDuration)
		}
		return fmt.Errorf("limits: %w", cfgval.UnknownKey(k, limitKeys))
	})
}

// parseSignatures reads the signatures list: {name, hex, offset} maps.
func parseSignatures(v any) ([]signature, error) {
	l, err := cfgval.Key("signatures").Maps(v, signatureKeys)
	if err != nil {
		return nil, err
	}
	var sigs []signature
	seen := map[string]bool{}
	for i, m := range l {
		s, err := parseSignatureMap(fmt.Sprintf("signatures[%d]", i), m)
		if err != nil {
			return nil, err
		}
		if s.name == "" || seen[s.name] || strings.ContainsAny(s.name, " :") {
			return nil, fmt.Errorf("signatures[%d]: a unique name without spaces or ':' is required", i)
		}
		seen[s.name] = true
		sigs = append(sigs, s)
	}
	return sigs, nil
}

// parseSignatureMap reads one entry of signatures; at is its place
// ("signatures[2]").
func parseSignatureMap(at string, m map[string]any) (signature, error) {
	var name, hexs string
	offset := -1
	err := cfgval.Each(m, func(k string, v any) error {
		key := cfgval.Key(at + "." + k)
		switch k {
		case "name":
			return cfgval.Set(&name, v, key.Text)
		case "hex":
			return cfgval.Set(&hexs, v, key.Text)
		case "offset":
			return cfgval.Set(&offset, v, func(v any) (int, error) { return key.Whole(v, 0, math.MaxInt) })
		}
		return fmt.Errorf("%s: %w", at, cfgval.UnknownKey(k, signatureKeys))
	})
	if err != nil {
		return signature{}, err
	}
	s, err := parseSignature(name, hexs, int64(offset))
	if err != nil {
		return s, fmt.Errorf("%s.%w", at, err)
	}
	return s, nil
}
