package dnsbl

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/sdk"
)

// FuzzQueries: whatever a client sends as HELO and MAIL FROM, the names
// asked are valid DNS names under the configured zones.
func FuzzQueries(f *testing.F) {
	f.Add("spam.example", "a@b.example", "203.0.113.5")
	f.Add("[203.0.113.5]", "", "2001:db8::1")
	f.Add("a..b", "x@y@z.example.", "::ffff:10.0.0.1")
	f.Add("xn--bcher-kva.example", "\"a@b\"@c.example", "10.0.0.1")
	f.Add("ｈｅｌｏ.例え.jp", "送信者@スパム.example", "10.0.0.1")
	zones := []*zone{{name: "bl.test", ipv6: true}, {name: "dbl.test", domain: true}}
	f.Fuzz(func(t *testing.T, helo, from, ip string) {
		qs, err := queries(zones, &sdk.Request{Phase: sdk.PhaseMail, Conn: sdk.Conn{IP: ip, HELO: helo}, Envelope: sdk.Envelope{From: from}}, false)
		if err != nil {
			return
		}
		for _, q := range qs {
			if _, ok := dns.IsDomainName(q.name); !ok || len(q.name) > 254 {
				t.Fatalf("bad query name %q", q.name)
			}
			if !dns.IsSubDomain(q.zone.name+".", q.name) {
				t.Fatalf("%q is not under %s", q.name, q.zone.name)
			}
		}
	})
}
