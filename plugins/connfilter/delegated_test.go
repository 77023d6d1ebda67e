package connfilter

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCountries(t *testing.T) {
	var b CountryBuilder
	if err := b.Parse("apnic", strings.NewReader(delegated)); err != nil {
		t.Fatal(err)
	}
	ripe := "ripencc|FR|ipv4|2.0.0.0|1048576|20100712|allocated\nripencc|DE|ipv6|2a00::|12|20080101|allocated\n" +
		"ripencc|FR|ipv4|2.16.0.0|300|20100712|allocated\n"
	if err := b.Parse("ripe", strings.NewReader(ripe)); err != nil {
		t.Fatal(err)
	}
	c := b.Build()
	tests := []struct{ ip, want string }{
		{"203.0.113.0", "JP"}, {"203.0.113.127", "JP"}, {"203.0.113.128", "CN"}, {"203.0.113.191", "CN"},
		{"203.0.113.192", ""}, {"198.51.100.1", ""}, {"192.0.2.1", ""},
		{"2.0.0.0", "FR"}, {"2.15.255.255", "FR"}, {"2.16.1.43", "FR"}, {"2.16.1.44", ""},
		{"::ffff:203.0.113.1", "JP"},
		{"2001:db8:100::", "KR"}, {"2001:db8:1ff:ffff:ffff:ffff:ffff:ffff", "KR"}, {"2001:db8:200::", ""},
		{"2a0f:ffff::1", "DE"}, {"2a10::", ""}, {"::", ""}, {"0.0.0.0", ""}, {"255.255.255.255", ""},
	}
	for _, tt := range tests {
		if got := c.Lookup(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("Lookup(%s) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}

func TestDelegatedErrors(t *testing.T) {
	for _, line := range []string{
		"apnic|JP|ipv4|1.2.3|256|2011|allocated",
		"apnic|JP|ipv4|255.255.255.0|512|2011|allocated",
		"apnic|JP|ipv4|1.2.3.0|0|2011|allocated",
		"apnic|JP|ipv6|2001:db8::|129|2011|allocated",
		"apnic|JP|ipv6|10.0.0.0|8|2011|allocated",
		"apnic|JP|ipv4",
	} {
		var b CountryBuilder
		if err := b.Parse("f", strings.NewReader(line)); err == nil {
			t.Errorf("%q: no error", line)
		}
	}
}

// TestCountriesOverlap: where records overlap (an inter-RIR transfer shown
// by both registries, a bigger block listed around a smaller one) the one
// starting first wins where they overlap, and the rest of the other still
// has its country. (IPv6 records are prefixes: they nest, never overlap
// in part.)
func TestCountriesOverlap(t *testing.T) {
	var b CountryBuilder
	for name, text := range map[string]string{
		"arin":    "arin|US|ipv4|198.51.100.0|128|20100712|allocated\n",
		"ripencc": "ripencc|NL|ipv4|198.51.100.64|192|20200101|allocated\n",
	} {
		if err := b.Parse(name, strings.NewReader(text)); err != nil {
			t.Fatal(err)
		}
	}
	c := b.Build()
	for ip, want := range map[string]string{
		"198.51.100.0": "US", "198.51.100.127": "US", "198.51.100.128": "NL", "198.51.100.255": "NL", "198.51.101.0": "",
	} {
		if got := c.Lookup(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Lookup(%s) = %q, want %q", ip, got, want)
		}
	}
}
