package dnsbl

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/sdk"
)

// FuzzZoneConfig: a zone the config takes is asked with a valid DNS name
// for every client, IPv6 ones with their 32 nibble labels included, and
// its codes count only answers in 127.0.0.0/8 (a mask aside).
func FuzzZoneConfig(f *testing.F) {
	for _, s := range [][2]string{
		{"zen.example", "127.0.0.2-127.0.0.11"},
		{"ZEN.example. ", " 127.0.0.4"},
		{"zen.example=127.0.0.[2..11]", "127.0.0.2"},
		{"bl_1.example", "mask:0.0.0.2"},
		{"a..b", "10.0.0.2"},
		{"x.123", "127.255.255.255-128.0.0.0"},
	} {
		f.Add(s[0], s[1], false)
		f.Add(s[0], s[1], true)
	}
	f.Fuzz(func(t *testing.T, name, codeStr string, domain bool) {
		z, err := parseZone(map[string]any{"zone": name, "codes": []any{codeStr}, "domain": domain})
		if err != nil {
			return
		}
		for _, c := range z.codes {
			if c.mask == 0 && (c.lo>>24 != 127 || c.hi>>24 != 127 || c.lo > c.hi) {
				t.Fatalf("code %q taken as %+v", codeStr, c)
			}
		}
		for _, ip := range []string{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "203.0.113.255"} {
			req := &sdk.Request{Phase: sdk.PhaseMail, Conn: sdk.Conn{IP: ip, HELO: "mail.example.test"}, Envelope: sdk.Envelope{From: "a@example.test"}}
			qs, err := queries([]*zone{z}, req, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(qs) == 0 {
				t.Fatalf("zone %q taken, but nothing asked for %s", name, ip)
			}
			for _, q := range qs {
				if _, ok := dns.IsDomainName(q.name); !ok || len(q.name) > 254 {
					t.Fatalf("zone %q taken, but asked as %q", name, q.name)
				}
			}
		}
	})
}
