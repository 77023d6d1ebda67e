package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-mta/portcullis/sdk/cfgval"
)

// ParseDuration accepts Go duration syntax plus a "d" unit of 24 hours, which
// may be combined with the others ("5d", "1d12h", "1.5d"). A bare "0" is zero.
// It is cfgval's, so that a stage's config (greylist's pass_lifetime, a
// stage's timeout) reads a duration as the gateway's config does.
func ParseDuration(s string) (time.Duration, error) { return cfgval.ParseDuration(s) }

// UnmarshalYAML parses a duration scalar; errors carry no position, the
// caller adds it.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("want a duration like 5m or 2d")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// String formats the duration in Go syntax.
func (d Duration) String() string { return time.Duration(d).String() }

// ParsePrefix parses a relay.networks or trusted_proxies entry: a CIDR
// ("10.0.0.0/8", "2001:db8::/32"), a bare address (a /32 or /128), or the
// "address,mask" form with a dotted IPv4 mask ("192.168.1.0,255.255.255.0").
// Host bits are cleared: "10.1.2.3/8" means 10.0.0.0/8.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if addr, mask, ok := strings.Cut(s, ","); ok {
		return parseAddrMask(strings.TrimSpace(addr), strings.TrimSpace(mask))
	}
	if strings.Contains(s, "/") {
		p, err := cfgval.Network(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid network %q", s)
		}
		return p, nil
	}
	p, err := cfgval.Network(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid network %q (want CIDR, address, or address,mask)", s)
	}
	return p, nil
}

func parseAddrMask(addr, mask string) (netip.Prefix, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid address %q", addr)
	}
	a = a.Unmap()
	var bits int
	if m, err := netip.ParseAddr(mask); err == nil {
		if m.Is4() != a.Is4() {
			return netip.Prefix{}, fmt.Errorf("mask %q does not fit address %q", mask, addr)
		}
		var ok bool
		if bits, ok = maskBits(m.AsSlice()); !ok {
			return netip.Prefix{}, fmt.Errorf("mask %q is not contiguous", mask)
		}
	} else if n, err := strconv.Atoi(mask); err == nil && n >= 0 && n <= a.BitLen() {
		bits = n
	} else {
		return netip.Prefix{}, fmt.Errorf("invalid mask %q", mask)
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

// maskBits counts the leading ones of a mask and reports whether all the
// ones come first (255.0.255.0 is not a netmask).
func maskBits(b []byte) (int, bool) {
	bits, zero := 0, false
	for _, x := range b {
		for i := 7; i >= 0; i-- {
			one := x&(1<<i) != 0
			if one && zero {
				return 0, false
			}
			if one {
				bits++
			} else {
				zero = true
			}
		}
	}
	return bits, true
}

// UnmarshalYAML parses one network entry.
func (p *Prefixes) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("want a network like 10.0.0.0/8, 192.0.2.1 or 192.168.1.0,255.255.255.0")
	}
	pf, err := ParsePrefix(n.Value)
	if err != nil {
		return err
	}
	*p = Prefixes{Prefix: pf, Text: n.Value}
	return nil
}

// Contains reports whether ip (v4-mapped forms unmapped) is in the network.
func (p Prefixes) Contains(ip netip.Addr) bool { return p.Prefix.Contains(ip.Unmap()) }

// String returns the entry as written.
func (p Prefixes) String() string { return p.Text }
