package dnsutil

import (
	"net/netip"
	"strings"
)

const hexDigits = "0123456789abcdef"

// ReverseLabels returns ip's labels in reverse order: "5.113.0.203" for
// 203.0.113.5 (RFC 1035 3.5), 32 nibbles for an IPv6 address (RFC 3596
// 2.5). A DNSBL query is ReverseLabels(ip) + "." + zone (RFC 5782 2.1, 2.4).
func ReverseLabels(ip netip.Addr) string {
	ip = ip.Unmap()
	var b strings.Builder
	if ip.Is4() {
		a := ip.As4()
		for i := 3; i >= 0; i-- {
			if i < 3 {
				b.WriteByte('.')
			}
			b.WriteString(itoa(a[i]))
		}
		return b.String()
	}
	a := ip.As16()
	b.Grow(63)
	for i := 15; i >= 0; i-- {
		if i < 15 {
			b.WriteByte('.')
		}
		b.WriteByte(hexDigits[a[i]&0xf])
		b.WriteByte('.')
		b.WriteByte(hexDigits[a[i]>>4])
	}
	return b.String()
}

// ReverseName is the PTR query name of ip, with the final dot.
func ReverseName(ip netip.Addr) string {
	if ip.Unmap().Is4() {
		return ReverseLabels(ip) + ".in-addr.arpa."
	}
	return ReverseLabels(ip) + ".ip6.arpa."
}

func itoa(v byte) string {
	switch {
	case v >= 100:
		return string([]byte{'0' + v/100, '0' + v/10%10, '0' + v%10})
	case v >= 10:
		return string([]byte{'0' + v/10, '0' + v%10})
	}
	return string([]byte{'0' + v})
}
