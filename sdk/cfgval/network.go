package cfgval

import (
	"errors"
	"net/netip"
	"strings"
)

// Network reads a network as a list entry of addresses is written: a CIDR
// ("10.0.0.0/8", "2001:db8::/32") or a bare address (a /32 or /128).
// Host bits are cleared ("10.1.2.3/8" is 10.0.0.0/8), and an IPv4-mapped
// IPv6 entry (::ffff:a.b.c.d, or ::ffff:a.b.c.d/n with n >= 96) becomes
// the IPv4 network it maps, so that it matches client addresses, which
// the gateway compares unmapped. A zone (fe80::1%eth0) is refused: client
// addresses carry none.
func Network(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("want a CIDR such as 10.0.0.0/8")
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, errors.New("want an address or a CIDR")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
