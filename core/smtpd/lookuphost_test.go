package smtpd

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// TestLookupHost: conn.hostname is the forward-confirmed name among the
// first five PTR names (as the rdns stage tries), and a lookup the DNS
// could not answer (SERVFAIL, a timeout) is an error, not "no name": a
// host pattern could have matched the client (connfilter errs then).
func TestLookupHost(t *testing.T) {
	srv := dnsutiltest.New(t,
		"7.0.0.192.in-addr.arpa. 300 IN PTR host7.dyn.test.",
		"host7.dyn.test. 300 IN A 192.0.0.7",
		"8.0.0.192.in-addr.arpa. 300 IN PTR host8.dyn.test.",
		"10.0.0.192.in-addr.arpa. 300 IN PTR other.test.",
		"other.test. 300 IN A 192.0.0.99",
		"14.0.0.192.in-addr.arpa. 300 IN PTR n1.test.",
		"14.0.0.192.in-addr.arpa. 300 IN PTR n2.test.",
		"14.0.0.192.in-addr.arpa. 300 IN PTR n3.test.",
		"14.0.0.192.in-addr.arpa. 300 IN PTR host14.dyn.test.",
		"host14.dyn.test. 300 IN A 192.0.0.14",
		"12.0.0.192.in-addr.arpa. 300 IN PTR bad-.test.",
		"12.0.0.192.in-addr.arpa. 300 IN PTR host12.dyn.test.",
		"bad-.test. 300 IN A 192.0.0.12",
		"host12.dyn.test. 300 IN A 192.0.0.12",
	)
	srv.Add(t, dnsutil.ReverseName(netip.MustParseAddr("2001:db8::7"))+" 300 IN PTR host6.dyn.test.")
	srv.Add(t, "host6.dyn.test. 300 IN A 192.0.0.7")
	srv.Add(t, "host6.dyn.test. 300 IN AAAA 2001:db8::7")
	srv.ServFail("host8.dyn.test.")
	srv.ServFail("9.0.0.192.in-addr.arpa.")
	r := NewResolver(config.DNS{Servers: []string{srv.Addr}, Timeout: config.Duration(time.Second)})
	for _, tc := range []struct {
		ip, name string
		err      bool
	}{
		{"192.0.0.7", "host7.dyn.test", false},
		{"::ffff:192.0.0.7", "host7.dyn.test", false},
		{"2001:db8::7", "host6.dyn.test", false},
		{"192.0.0.8", "", true},   // the forward lookup failed
		{"192.0.0.9", "", true},   // the PTR lookup failed
		{"192.0.0.10", "", false}, // a name that does not confirm
		{"192.0.0.11", "", false}, // no PTR at all
		{"192.0.0.14", "host14.dyn.test", false},
		{"192.0.0.12", "host12.dyn.test", false}, // a PTR name that is no host name is passed over
	} {
		name, err := LookupHost(r, netip.MustParseAddr(tc.ip), time.Second)
		if name != tc.name || (err != nil) != tc.err {
			t.Errorf("%s: %q, %v; want %q, error %v", tc.ip, name, err, tc.name, tc.err)
		}
	}
}

// TestLookupHostErrorNamesNoServer: a failed lookup's error says what went
// wrong, not Go's "on SERVER", which names resolv.conf's server even when
// dns.servers sent the query elsewhere.
func TestLookupHostErrorNamesNoServer(t *testing.T) {
	srv := dnsutiltest.New(t)
	srv.ServFail("9.0.0.192.in-addr.arpa.")
	r := NewResolver(config.DNS{Servers: []string{srv.Addr}, Timeout: config.Duration(time.Second)})
	_, err := LookupHost(r, netip.MustParseAddr("192.0.0.9"), time.Second)
	if err == nil || strings.Contains(err.Error(), " on ") || !strings.HasPrefix(err.Error(), "PTR 192.0.0.9: ") {
		t.Errorf("error %v", err)
	}
}

// TestLookupHostDeadFirstServer: a first dns.servers entry that never
// answers costs a lookup only its share of dns.timeout, so the next
// server still gives the name (before, the dead server took it all and
// every session got hostname_error); the sessions after that ask the live
// server first: the dead one gets no query, so it delays no greeting.
func TestLookupHostDeadFirstServer(t *testing.T) {
	dead, err := net.ListenPacket("udp", "127.0.0.1:0") // reads, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	var asked atomic.Int32
	go func() {
		buf := make([]byte, 512)
		for {
			if _, _, err := dead.ReadFrom(buf); err != nil {
				return
			}
			asked.Add(1)
		}
	}()
	srv := dnsutiltest.New(t,
		"7.0.0.192.in-addr.arpa. 300 IN PTR mail.example.test.",
		"mail.example.test. 300 IN A 192.0.0.7",
	)
	timeout := time.Second
	r := NewResolver(config.DNS{Servers: []string{dead.LocalAddr().String(), srv.Addr}, Timeout: config.Duration(timeout)})
	for i := range 2 {
		before := asked.Load()
		name, err := LookupHost(r, netip.MustParseAddr("192.0.0.7"), timeout)
		if name != "mail.example.test" || err != nil {
			t.Errorf("lookup %d: %q, %v; want mail.example.test", i, name, err)
		}
		if n := asked.Load() - before; i == 0 && n == 0 || i == 1 && n != 0 {
			t.Errorf("lookup %d asked the dead server %d times", i, n)
		}
	}
}

// TestLookupHostSlowName: PTR names are confirmed in parallel, so a name
// whose zone never answers hides neither a later name that confirms nor
// takes the lookup's whole time; among names that confirm, the first in
// PTR order wins even when it answers a little later. Both with
// dns.servers and with Go's resolver, which stands in for the system's.
func TestLookupHostSlowName(t *testing.T) {
	srv := dnsutiltest.New(t,
		"7.0.0.192.in-addr.arpa. 300 IN PTR stale.example.test.",
		"7.0.0.192.in-addr.arpa. 300 IN PTR mail.example.test.",
		"mail.example.test. 300 IN A 192.0.0.7",
		"8.0.0.192.in-addr.arpa. 300 IN PTR first.example.test.",
		"8.0.0.192.in-addr.arpa. 300 IN PTR second.example.test.",
		"first.example.test. 300 IN A 192.0.0.8",
		"second.example.test. 300 IN A 192.0.0.8",
	)
	srv.Drop("stale.example.test.")
	srv.Delay("first.example.test.", 50*time.Millisecond)
	// Far beyond what the answering names take on a loaded machine, so
	// that only waiting for the silent one reaches it.
	timeout := 10 * time.Second
	goResolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Addr)
	}}
	for _, r := range []struct {
		name string
		r    Resolver
	}{
		{"dns.servers", NewResolver(config.DNS{Servers: []string{srv.Addr}, Timeout: config.Duration(timeout)})},
		{"go", goResolver},
	} {
		t.Run(r.name, func(t *testing.T) {
			for _, tc := range []struct{ ip, want string }{
				{"192.0.0.7", "mail.example.test"},
				{"192.0.0.8", "first.example.test"},
			} {
				start := time.Now()
				name, err := LookupHost(r.r, netip.MustParseAddr(tc.ip), timeout)
				if took := time.Since(start); took >= timeout {
					t.Errorf("%s took %v: the name that never answers held the lookup to its end", tc.ip, took)
				}
				if name != tc.want || err != nil {
					t.Errorf("%s: %q, %v; want %q", tc.ip, name, err, tc.want)
				}
			}
		})
	}
}
