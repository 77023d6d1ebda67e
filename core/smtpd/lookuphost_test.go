package smtpd

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
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
	)
	srv.ServFail("host8.dyn.test.")
	srv.ServFail("9.0.0.192.in-addr.arpa.")
	r := NewResolver(config.DNS{Servers: []string{srv.Addr}, Timeout: config.Duration(time.Second)})
	for _, tc := range []struct {
		ip, name string
		err      bool
	}{
		{"192.0.0.7", "host7.dyn.test", false},
		{"192.0.0.8", "", true},   // the forward lookup failed
		{"192.0.0.9", "", true},   // the PTR lookup failed
		{"192.0.0.10", "", false}, // a name that does not confirm
		{"192.0.0.11", "", false}, // no PTR at all
		{"192.0.0.14", "host14.dyn.test", false},
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
