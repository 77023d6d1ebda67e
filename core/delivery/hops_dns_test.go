package delivery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
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
	r, err := dnsresolve.New(dnsresolve.Options{Servers: []string{addr}, Timeout: 100 * time.Millisecond})
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

// maxMXNames: an attempt looks up the addresses of at most the first
// maxMXNames MX hosts, so a domain with many hosts whose lookups time out
// holds a worker for a bounded time. It used to ask about every one.
func TestHopsMXNameLimit(t *testing.T) {
	records := func(domain string) []string {
		var rrs []string
		for i := range 20 {
			rrs = append(rrs, fmt.Sprintf("%s. 60 IN MX %d mx%d.%s.", domain, i, i, domain))
		}
		return rrs
	}
	// asked lists the hosts whose A record the server was asked for. A
	// query the resolver gave up on may still wait in the server's socket
	// on a loaded machine, so the first maxMXNames are waited for (10 s at
	// most); a host beyond them is never sent, late or not.
	asked := func(s *dnstest.Server, domain string) []int {
		var hosts []int
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			hosts = hosts[:0]
			for i := range 20 {
				if s.Queries(fmt.Sprintf("mx%d.%s", i, domain), "A") > 0 {
					hosts = append(hosts, i)
				}
			}
			if len(hosts) >= maxMXNames || time.Now().After(deadline) {
				return hosts
			}
		}
	}
	first := make([]int, maxMXNames)
	for i := range first {
		first[i] = i
	}

	t.Run("hosts that never answer", func(t *testing.T) {
		s := dnstest.New(t, records("slow.test")...)
		for i := range 20 {
			s.Drop(fmt.Sprintf("mx%d.slow.test", i))
		}
		got := hopsVia(t, s.Addr, "slow.test")
		if !strings.HasPrefix(got, "451 4.4.3 mx0.slow.test: DNS lookup failed") {
			t.Errorf("got %q, want the temporary failure of the first host", got)
		}
		if hosts := asked(s, "slow.test"); !slices.Equal(hosts, first) {
			t.Errorf("looked up hosts %v, want %v", hosts, first)
		}
	})
	t.Run("hosts that do not exist", func(t *testing.T) {
		// The hosts left unasked may have addresses: our limit is no
		// reason to bounce.
		s := dnstest.New(t, records("stale.test")...)
		want := fmt.Sprintf("451 4.4.4 stale.test: none of the first %d MX hosts has an address (%d more not looked up): stale.test: MX host mx0.stale.test not found", maxMXNames, 20-maxMXNames)
		if got := hopsVia(t, s.Addr, "stale.test"); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		if hosts := asked(s, "stale.test"); !slices.Equal(hosts, first) {
			t.Errorf("looked up hosts %v, want %v", hosts, first)
		}
	})
}

// RFC 3463: a domain whose MX hosts do not exist cannot be routed (5.4.4,
// as Postfix says); only a domain that does not exist itself, MX or
// address, is a bad destination (5.1.2). A stale MX record used to bounce
// as if the recipient's domain were a typo.
func TestHopsMXHostNotFound(t *testing.T) {
	dns := dnstest.New(t,
		"stale.test. 60 IN MX 10 gone.stale.test.",
		"self.test. 60 IN MX 10 self.test.",
		"nomx.test. 60 IN TXT \"v=spf1 -all\"",
	)
	for domain, want := range map[string]string{
		"stale.test":  "550 5.4.4 stale.test: MX host gone.stale.test not found",
		"self.test":   "550 5.4.4 self.test: MX host self.test not found",
		"nomx.test":   "550 5.1.2 nomx.test: host or domain not found",
		"absent.test": "550 5.1.2 absent.test: host or domain not found",
	} {
		if got := hopsVia(t, dns.Addr, domain); got != want {
			t.Errorf("%s: got %q, want %q", domain, got, want)
		}
	}
}

// A refused connection reads as Postfix words it ("connect to HOST[ADDR]:
// PORT: connection refused"), not as Go's "dial tcp ADDR: connect: ...":
// the text goes into DSNs and the queue listing.
func TestConnReplyRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(l.Addr().String())
	l.Close() // nothing listens there now
	_, err = (&net.Dialer{}).DialContext(context.Background(), "tcp", addr.String())
	if err == nil {
		t.Fatalf("%s accepted a connection after its listener closed", addr)
	}
	got := connReply(hop{host: "mx.dom.test", addr: addr}, &hopError{hop: "mx.dom.test", err: err}).String()
	want := fmt.Sprintf("451 4.4.1 connect to mx.dom.test[127.0.0.1]:%d: connection refused", addr.Port())
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
