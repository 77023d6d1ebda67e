package connfilter

import (
	"bytes"
	"net/netip"
	"testing"
)

// FuzzListFile: any list file either loads or fails with an error; what
// loads answers lookups without panicking, and every IP entry that loaded
// matches its own address.
func FuzzListFile(f *testing.F) {
	f.Add([]byte("# c\n203.0.113.5\n198.51.100.0/24 # x\n2001:db8::/32\n192.0.2.0,255.255.255.0\n*.dyn.example\nJP\n"))
	f.Add([]byte("REJECT/IP/203.0.113.5\nPASS/IP/127.0.0.1\nREJECT/HOST/*.dyn.example\nPASS/HOST/a.example\n"))
	f.Add([]byte("\ufeffip:::ffff:1.2.3.4/120\ncountry:cn\nhost:[a-z]*.example\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		deny, allow := newList("deny"), newList("allow")
		if err := parseListFile("f", bytes.NewReader(data), deny, deny, allow); err != nil {
			return
		}
		for _, l := range []*list{deny, allow} {
			for p, e := range l.prefixes {
				if p != p.Masked() {
					t.Fatalf("%q stored unmasked as %v", e, p)
				}
				if l.matchIP(p.Addr()) == "" {
					t.Fatalf("%q (%v) does not match its own address", e, p)
				}
			}
			l.match(netip.MustParseAddr("203.0.113.5"), "a.dyn.example", "JP")
		}
	})
}

// FuzzDelegated: any delegated-stats input parses or fails; a built table
// finds, for each range's first address, that range's country.
func FuzzDelegated(f *testing.F) {
	f.Add([]byte(delegated))
	f.Add([]byte("arin|US|ipv4|0.0.0.0|4294967296|2011|allocated\nlacnic|BR|ipv6|::|0|2011|assigned\n"))
	f.Add([]byte("afrinic|ZA|ipv4|41.0.0.0|300|2011|allocated\nafrinic|ZA|ipv4|41.0.1.44|212|2011|allocated\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b CountryBuilder
		if err := b.Parse("f", bytes.NewReader(data)); err != nil {
			return
		}
		c := b.Build()
		for i, r := range c.v4 {
			if r.end < r.start || i > 0 && c.v4[i-1].end >= r.start {
				t.Fatalf("v4 ranges unsorted or overlapping at %d: %+v", i, c.v4)
			}
			var a [4]byte
			a[0], a[1], a[2], a[3] = byte(r.start>>24), byte(r.start>>16), byte(r.start>>8), byte(r.start)
			if got := c.Lookup(netip.AddrFrom4(a)); got != c.codes[r.cc] {
				t.Fatalf("lookup of range start %v = %q, want %q", netip.AddrFrom4(a), got, c.codes[r.cc])
			}
		}
		for i, r := range c.v6 {
			if r.end.less(r.start) || i > 0 && !c.v6[i-1].end.less(r.start) {
				t.Fatalf("v6 ranges unsorted or overlapping at %d", i)
			}
		}
	})
}
