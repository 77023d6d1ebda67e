package dnsbl

import (
	"context"
	"fmt"
	"testing"

	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// BenchmarkCheck3Zones is the stage's cost per connection with three
// address zones against the in-process DNS server: cold (a new client
// address every time, so three queries) and cached (the same client), beside
// the baseline of one bare query to the same server in the same run.
func BenchmarkCheck3Zones(b *testing.B) {
	srv := dnsutiltest.New(b, "5.113.0.203.a.test. 300 IN A 127.0.0.2", `5.113.0.203.a.test. 300 IN TXT "listed"`)
	s := New().(*Stage)
	if err := s.Configure(context.Background(), sdk.Env{DNSServers: []string{srv.Addr}},
		map[string]any{"zones": []any{"a.test", "b.test", "c.test"}, "cache_size": 1 << 20}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("baseline-one-query", func(b *testing.B) {
		r := &dnsutil.Resolver{Servers: []string{srv.Addr}}
		for i := 0; b.Loop(); i++ {
			if _, err := r.Lookup(ctx, fmt.Sprintf("%d.%d.0.10.x.test.", i&255, i>>8&255), dns.TypeA); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
			if _, err := s.Check(ctx, req(sdk.PhaseHelo, ip, "", "")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			res, err := s.Check(ctx, req(sdk.PhaseHelo, "203.0.113.5", "", ""))
			if err != nil || res.Verdict != sdk.VerdictFail {
				b.Fatal(res, err)
			}
		}
	})
}
