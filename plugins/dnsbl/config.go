package dnsbl

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/sdk/cfgval"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
)

// config is the stage's `config:` map, validated.
type config struct {
	zones     []*zone
	threshold float64
	timeout   time.Duration // bounds one check, all zones together
	maxTTL    time.Duration // cache entries live min(TTL, maxTTL)
	negTTL    time.Duration // NXDOMAIN without an SOA minimum
	cacheSize int
	// checkPrivate asks the address zones about loopback and private
	// clients too: for a lab or a test whose clients are on loopback.
	checkPrivate bool
}

// zone is one DNSBL, DNSWL or RHSBL.
type zone struct {
	name   string  // "bl.example.test", lower case, no final dot
	weight float64 // added to the score when listed
	allow  bool    // DNSWL: a listing is verdict pass
	domain bool    // RHSBL: queried with the HELO and MAIL FROM domains instead of the address
	ipv6   bool    // query IPv6 clients (nibble names)
	codes  []code  // answers that count; empty: any 127.0.0.0/8 answer
}

// code is one accepted answer: an address range, or a bitmask over the
// answer's 32 bits (any bit set counts; used by combined lists).
type code struct {
	lo, hi uint32
	mask   uint32
}

func (c code) match(a uint32) bool {
	if c.mask != 0 {
		return a&c.mask != 0
	}
	return a >= c.lo && a <= c.hi
}

var (
	configKeys = []string{"zones", "threshold", "timeout", "max_ttl", "negative_ttl", "cache_size", "check_private"}
	zoneKeys   = []string{"zone", "weight", "codes", "allow", "domain", "ipv6"}
)

// parseConfig reads the config map; keys are read in sorted order, so
// that of two mistakes the same one is reported each time.
func parseConfig(raw map[string]any) (config, error) {
	cfg := config{threshold: 1, timeout: 2 * time.Second, maxTTL: time.Hour, negTTL: time.Minute, cacheSize: 10000}
	err := cfgval.Each(raw, func(k string, v any) (err error) {
		switch k {
		case "zones":
			cfg.zones, err = parseZones(v)
		case "threshold":
			cfg.threshold, err = cfgval.Key(k).Number(v)
		case "timeout":
			cfg.timeout, err = cfgval.Key(k).Duration(v)
		case "max_ttl":
			cfg.maxTTL, err = cfgval.Key(k).Duration(v)
		case "negative_ttl":
			cfg.negTTL, err = cfgval.Key(k).Duration(v)
		case "cache_size":
			cfg.cacheSize, err = cfgval.Key(k).Whole(v, 0, math.MaxInt32)
		case "check_private":
			cfg.checkPrivate, err = cfgval.Key(k).Bool(v)
		default:
			err = cfgval.UnknownKey(k, configKeys)
		}
		return err
	})
	if err != nil {
		return config{}, err
	}
	if len(cfg.zones) == 0 {
		return config{}, fmt.Errorf("zones: at least one zone is needed")
	}
	if cfg.timeout <= 0 {
		return config{}, fmt.Errorf("timeout: must be positive")
	}
	return cfg, nil
}

func parseZones(v any) ([]*zone, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("zones: want a list")
	}
	var out []*zone
	seen := map[string]bool{}
	for i, x := range l {
		z, err := parseZone(x)
		if err != nil {
			return nil, fmt.Errorf("zones[%d]: %v", i, err)
		}
		key := fmt.Sprintf("%s/%v", z.name, z.domain)
		if seen[key] {
			return nil, fmt.Errorf("zones[%d]: %s listed twice", i, z.name)
		}
		seen[key] = true
		out = append(out, z)
	}
	return out, nil
}

func parseZone(x any) (*zone, error) {
	z := &zone{weight: 1, ipv6: true}
	m, ok := x.(map[string]any)
	if s, isStr := x.(string); isStr {
		m, ok = map[string]any{"zone": s}, true
	}
	if !ok {
		return nil, fmt.Errorf("want a zone name or {%s}", strings.Join(zoneKeys, ", "))
	}
	err := cfgval.Each(m, func(k string, v any) (err error) {
		switch k {
		case "zone":
			s, _ := v.(string)
			z.name = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
		case "weight":
			z.weight, err = cfgval.Key(k).Number(v)
		case "allow":
			z.allow, err = cfgval.Key(k).Bool(v)
		case "domain":
			z.domain, err = cfgval.Key(k).Bool(v)
		case "ipv6":
			z.ipv6, err = cfgval.Key(k).Bool(v)
		case "codes":
			z.codes, err = parseCodes(v)
		default:
			err = cfgval.UnknownKey(k, zoneKeys)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if why := badZoneName(z.name); why != "" {
		return nil, fmt.Errorf("bad zone name %v: %s", m["zone"], why)
	}
	return z, nil
}

// maxZoneLen leaves room, within a name's 253 octets, for an IPv6 client's
// 32 nibble labels and their dots (RFC 5782 2.4): 64 octets.
const maxZoneLen = 253 - 64

// badZoneName says why name cannot be a list's zone, or "". A zone that is
// not a DNS name would be asked all the same and answer NXDOMAIN (or not
// be asked at all, dnsutil.Resolver.Lookup) for every client: "not
// listed", silently, for good. Postfix writes a list's codes and weight
// into the name (zen.example=127.0.0.[2..11], zen.example*2); here they
// are keys of their own.
func badZoneName(name string) string {
	switch {
	case strings.ContainsAny(name, "=*"):
		return "a DNS name only; codes and weight are keys of their own: {zone: zen.example, codes: [\"127.0.0.2-127.0.0.11\"], weight: 2}"
	case len(name) > maxZoneLen:
		return fmt.Sprintf("longer than %d octets, leaving no room for an IPv6 client's query", maxZoneLen)
	case !dnsutil.ValidHostname(name):
		return "not a DNS name (letters, digits, '-' and '_' in dot-separated labels, not ending in a number)"
	}
	return ""
}

// parseCodes reads "127.0.0.2", "127.0.0.4-127.0.0.7" and "mask:0.0.0.6"
// (or "mask:6").
func parseCodes(v any) ([]code, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("codes: want a list")
	}
	var out []code
	for _, x := range l {
		s, _ := x.(string)
		c, err := parseCode(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("codes: %v", err)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseCode(s string) (code, error) {
	if m, ok := strings.CutPrefix(s, "mask:"); ok {
		if n, err := strconv.ParseUint(m, 0, 32); err == nil && n != 0 {
			return code{mask: uint32(n)}, nil
		}
		a, err := netip.ParseAddr(m)
		if err != nil || !a.Is4() || a.IsUnspecified() {
			return code{}, fmt.Errorf("bad mask %q", s)
		}
		return code{mask: u32(a)}, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	a, err1 := netip.ParseAddr(strings.TrimSpace(lo))
	b, err2 := netip.ParseAddr(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || !a.Is4() || !b.Is4() || u32(a) > u32(b) {
		return code{}, fmt.Errorf("bad code %q (want 127.0.0.2, 127.0.0.4-127.0.0.7 or mask:0.0.0.2)", s)
	}
	// Any other answer is a failure (lookup), so a code outside 127/8
	// would count no answer and the zone list no one.
	if a.As4()[0] != 127 || b.As4()[0] != 127 {
		return code{}, fmt.Errorf("bad code %q: a list answers in 127.0.0.0/8 (RFC 5782 2.1)", s)
	}
	return code{lo: u32(a), hi: u32(b)}, nil
}

func u32(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }
