package delivery

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/dnsresolve"
	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// hopsVia returns what hops makes of domain by MX with the DNS server at
// addr: the hosts and addresses to try, or the reply when there are none.
func hopsVia(t *testing.T, addr, domain string) string {
	t.Helper()
	r, err := dnsresolve.New(dnsresolve.Options{Servers: []string{addr}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := &settings{resolver: r, hostname: "gw.test"}
	hops, why := (&Manager{}).hops(context.Background(), s, defaultRoute, domain)
	if why != nil {
		return why.String()
	}
	var out []string
	for _, h := range hops {
		out = append(out, h.host+" "+h.addr.String())
	}
	return strings.Join(out, ", ")
}

// RFC 7505 and RFC 5321 5.1: a domain whose MX records are all "." accepts
// no mail, as one with a single null MX; it does not fall back to its A
// record (the implicit MX is for domains without MX records).
func TestHopsAllNullMX(t *testing.T) {
	dns := dnstest.New(t,
		"nomail.test. 60 IN MX 0 .",
		"nomail.test. 60 IN MX 10 .",
		"nomail.test. 60 IN A 127.0.0.9",
	)
	if got, want := hopsVia(t, dns.Addr, "nomail.test"), "556 5.1.10 nomail.test does not accept mail (null MX)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
