package dnsutil_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// TestNegativeAnswers: an empty NOERROR is NODATA when the server is
// authoritative, recurses, or gives the zone's SOA; its TTL is the SOA's
// own TTL or MINIMUM, whichever is less (RFC 2308 5).
func TestNegativeAnswers(t *testing.T) {
	srv := dnsutiltest.New(t, "a.example. 300 IN TXT \"x\"")
	soa := func(ttl, minttl uint32) dns.RR {
		return &dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
			Ns: "ns.example.", Mbox: "h.example.", Serial: 1, Refresh: 1, Retry: 1, Expire: 1, Minttl: minttl}
	}
	srv.Rewrite("recursive.example.", func(m *dns.Msg) {
		m.Rcode, m.Authoritative, m.RecursionAvailable, m.Ns = dns.RcodeSuccess, false, true, nil
	})
	srv.Rewrite("forwarded.example.", func(m *dns.Msg) {
		m.Rcode, m.Authoritative, m.RecursionAvailable, m.Ns = dns.RcodeSuccess, false, false, []dns.RR{soa(300, 60)}
	})
	srv.Rewrite("short.example.", func(m *dns.Msg) {
		m.Rcode, m.Ns = dns.RcodeNameError, []dns.RR{soa(20, 3600)}
	})
	r := &dnsutil.Resolver{Servers: []string{srv.Addr}, Timeout: time.Second}
	tests := []struct {
		name  string
		nxdom bool
		ttl   uint32
	}{
		{"recursive.example", false, 0},
		{"forwarded.example", false, 60},
		{"short.example", true, 20},
	}
	for _, tt := range tests {
		a, err := r.Lookup(context.Background(), tt.name, dns.TypeA)
		if err != nil || len(a.Records) != 0 || a.NXDomain != tt.nxdom || a.TTL != tt.ttl {
			t.Errorf("%s: %+v, %v; want NXDOMAIN %v with TTL %d", tt.name, a, err, tt.nxdom, tt.ttl)
		}
	}
}

// TestLookupNextAfterServFail: a SERVFAIL from one server is that server's
// failure; the next one is asked.
func TestLookupNextAfterServFail(t *testing.T) {
	bad := dnsutiltest.New(t)
	bad.ServFail("a.example.")
	good := dnsutiltest.New(t, "a.example. 300 IN A 192.0.2.1")
	r := &dnsutil.Resolver{Servers: []string{bad.Addr, good.Addr}, Timeout: time.Second}
	if a, err := r.Lookup(context.Background(), "a.example", dns.TypeA); err != nil || len(a.Addrs()) != 1 {
		t.Errorf("after a SERVFAIL: %+v, %v; want the second server's answer", a, err)
	}
}

// TestLookupCallerDeadline: running out of the caller's time is a
// timeout too.
func TestLookupCallerDeadline(t *testing.T) {
	srv := dnsutiltest.New(t)
	srv.Drop("slow.example.")
	r := &dnsutil.Resolver{Servers: []string{srv.Addr}, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := r.Lookup(ctx, "slow.example", dns.TypeA)
	var de *dnsutil.Error
	if !errors.As(err, &de) || !de.Timeout() {
		t.Errorf("Lookup = %v; want an *Error that is a timeout", err)
	}
}

func TestValidHostnameLength(t *testing.T) {
	// 253 octets is the longest name (RFC 1035 2.3.4 with the root's
	// length octets counted).
	name := strings.Repeat("a.", 125) + "abc"
	if len(name) != 253 || !dnsutil.ValidHostname(name) || dnsutil.ValidHostname(name+"d") {
		t.Errorf("a name of %d octets, and one more", len(name))
	}
}
