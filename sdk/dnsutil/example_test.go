package dnsutil_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// Example asks a DNSBL about a client the way a stage does: with the
// gateway's resolvers (sdk.Env.DNSServers; here an in-process server).
func Example() {
	srv := dnsutiltest.New(&testing.T{},
		"5.113.0.203.bl.example. 300 IN A 127.0.0.2",
		`5.113.0.203.bl.example. 300 IN TXT "listed for spam"`)
	r, _ := dnsutil.New([]string{srv.Addr})
	ctx := context.Background()
	for _, ip := range []string{"203.0.113.5", "203.0.113.6"} {
		name := dnsutil.ReverseLabels(netip.MustParseAddr(ip)) + ".bl.example"
		a, err := r.Lookup(ctx, name, dns.TypeA)
		if err != nil {
			fmt.Println(ip, "lookup failed:", err) // never read as "not listed"
			continue
		}
		if len(a.Records) == 0 {
			fmt.Println(ip, "not listed")
			continue
		}
		txt, _ := r.Lookup(ctx, name, dns.TypeTXT)
		fmt.Println(ip, "listed:", a.Addrs(), txt.Texts(), "for", a.TTL, "s")
	}
	// Output:
	// 203.0.113.5 listed: [127.0.0.2] [listed for spam] for 300 s
	// 203.0.113.6 not listed
}
