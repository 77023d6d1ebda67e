package msgauth

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// spfZone holds one domain per SPF result (RFC 7208 2.6).
func spfZone(t *testing.T) *dnsutiltest.Server {
	srv := dnsutiltest.New(t,
		`pass.test. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`fail.test. 300 IN TXT "v=spf1 ip4:198.51.100.1 -all"`,
		`soft.test. 300 IN TXT "v=spf1 ~all"`,
		`neutral.test. 300 IN TXT "v=spf1 ?all"`,
		`none.test. 300 IN TXT "just some text"`,
		`perm.test. 300 IN TXT "v=spf1 ip4:192.0.2.300 -all"`,
		`twice.test. 300 IN TXT "v=spf1 -all"`,
		`twice.test. 300 IN TXT "v=spf1 +all"`,
		`mx.test. 300 IN TXT "v=spf1 mx -all"`,
		`mx.test. 300 IN MX 10 out.mx.test.`,
		`out.mx.test. 300 IN A 192.0.2.10`,
		`inc.test. 300 IN TXT "v=spf1 include:broken.test -all"`,
		`helo.pass.test. 300 IN TXT "v=spf1 a -all"`,
		`helo.pass.test. 300 IN A 192.0.2.10`,
	)
	srv.ServFail("temp.test")
	srv.ServFail("broken.test")
	return srv
}

func TestSPF(t *testing.T) {
	srv := spfZone(t)
	s := newStage(t, srv, 0)
	tests := []struct {
		name, helo, from string
		want, wantHelo   string
	}{
		{"pass", "helo.pass.test", "a@pass.test", "pass", "pass"},
		{"pass by mx", "helo.pass.test", "a@mx.test", "pass", "pass"},
		{"fail", "helo.pass.test", "a@fail.test", "fail", "pass"},
		{"softfail", "helo.pass.test", "a@soft.test", "softfail", "pass"},
		{"neutral", "helo.pass.test", "a@neutral.test", "neutral", "pass"},
		{"none: no spf record", "helo.pass.test", "a@none.test", "none", "pass"},
		{"none: no such domain", "helo.pass.test", "a@nxdomain.test", "none", "pass"},
		{"temperror: servfail", "helo.pass.test", "a@temp.test", "temperror", "pass"},
		{"temperror: include servfail", "helo.pass.test", "a@inc.test", "temperror", "pass"},
		{"permerror: bad term", "helo.pass.test", "a@perm.test", "permerror", "pass"},
		{"permerror: two records", "helo.pass.test", "a@twice.test", "permerror", "pass"},
		{"null sender uses helo", "helo.pass.test", "", "pass", "pass"},
		{"helo fails", "fail.test", "a@pass.test", "pass", "fail"},
		{"helo address literal", "[192.0.2.10]", "a@pass.test", "pass", "none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := check(t, s, dataReq(t, message("a@pass.test"), tc.helo, tc.from))
			if got := res.Attrs["spf"]; got != tc.want {
				t.Errorf("spf = %q, want %q", got, tc.want)
			}
			if got := res.Attrs["spf_helo"]; got != tc.wantHelo {
				t.Errorf("spf_helo = %q, want %q", got, tc.wantHelo)
			}
		})
	}
}

// IPv6 clients, and mechanisms that ask for AAAA and PTR through our resolver.
func TestSPFIPv6AndPTR(t *testing.T) {
	srv := dnsutiltest.New(t,
		`v6.test. 300 IN TXT "v=spf1 ip6:2001:db8::/32 -all"`,
		`aaaa.test. 300 IN TXT "v=spf1 a:out.aaaa.test -all"`,
		`out.aaaa.test. 300 IN AAAA 2001:db8::25`,
		`ptr.test. 300 IN TXT "v=spf1 ptr -all"`,
		`5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 300 IN PTR mail.ptr.test.`,
		`mail.ptr.test. 300 IN AAAA 2001:db8::25`,
	)
	s := newStage(t, srv, 0)
	for _, tc := range []struct{ ip, from, want string }{
		{"2001:db8::25", "a@v6.test", "pass"},
		{"2001:db9::25", "a@v6.test", "fail"},
		{"2001:db8::25", "a@aaaa.test", "pass"},
		{"2001:db8::26", "a@aaaa.test", "fail"},
		{"2001:db8::25", "a@ptr.test", "pass"},
		{"2001:db8::26", "a@ptr.test", "fail"},
	} {
		req := dataReq(t, message("a@v6.test"), "h.v6.test", tc.from)
		req.Conn.IP = tc.ip
		if got := check(t, s, req).Attrs["spf"]; got != tc.want {
			t.Errorf("%s from %s: spf = %q, want %q", tc.from, tc.ip, got, tc.want)
		}
	}
}

// aaaaFailServer answers from srv, but SERVFAILs AAAA questions for the
// names in fail, as some broken authoritative servers do.
func aaaaFailServer(t *testing.T, srv *dnsutiltest.Server, fail ...string) *dnsutiltest.Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if len(req.Question) == 1 && req.Question[0].Qtype == dns.TypeAAAA && slices.Contains(fail, req.Question[0].Name) {
			m := new(dns.Msg)
			m.SetRcode(req, dns.RcodeServerFailure)
			w.WriteMsg(m)
			return
		}
		srv.ServeDNS(w, req)
	})
	started := make(chan struct{})
	ds := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	go ds.ActivateAndServe()
	<-started
	t.Cleanup(func() { ds.Shutdown() })
	return &dnsutiltest.Server{Addr: pc.LocalAddr().String()}
}

// RFC 7208 5.3/5.4: a and mx look up the address type of the client. An
// IPv4 client's pass does not hang on AAAA answers, and an IPv6 client's
// is found by AAAA.
func TestSPFAddressFamily(t *testing.T) {
	srv := dnsutiltest.New(t,
		`a.v4.test. 300 IN TXT "v=spf1 a:host.v4.test -all"`,
		`mx.v4.test. 300 IN TXT "v=spf1 mx -all"`,
		`mx.v4.test. 300 IN MX 10 host.v4.test.`,
		`host.v4.test. 300 IN A 192.0.2.10`,
		`a.v6.test. 300 IN TXT "v=spf1 a:host.v6.test -all"`,
		`host.v6.test. 300 IN A 192.0.2.99`,
		`host.v6.test. 300 IN AAAA 2001:db8::10`,
	)
	s := newStage(t, aaaaFailServer(t, srv, "host.v4.test."), 0)
	tests := []struct{ name, ip, from, want string }{
		{"ipv4 client, a, AAAA servfail", "192.0.2.10", "x@a.v4.test", "pass"},
		{"ipv4 client, mx, AAAA servfail", "192.0.2.10", "x@mx.v4.test", "pass"},
		{"ipv4 client not listed, AAAA servfail", "192.0.2.11", "x@a.v4.test", "fail"},
		{"ipv6 client, a", "2001:db8::10", "x@a.v6.test", "pass"},
		{"ipv6 client not listed", "2001:db8::11", "x@a.v6.test", "fail"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := dataReq(t, message("a@other.test"), "h.other.test", tc.from)
			req.Conn.IP = tc.ip
			if got := check(t, s, req).Attrs["spf"]; got != tc.want {
				t.Errorf("spf = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSlowDNSUsesTheBudget: a query may take the stage's whole timeout (3 s
// in these tests), not dnsutil's default of 2 s a try: an SPF record that
// comes in 2.3 s passes instead of temperror (and DMARC p=reject a 451).
func TestSlowDNSUsesTheBudget(t *testing.T) {
	srv := dnsutiltest.New(t, `slow.test. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`)
	srv.Delay("slow.test.", 2300*time.Millisecond)
	s := newStage(t, srv, 0)
	res := check(t, s, dataReq(t, message("a@slow.test"), "helo.slow.test", "a@slow.test"))
	if got := res.Attrs["spf"]; got != "pass" {
		t.Errorf("spf = %q after a 2.3 s answer, want pass (%s)", got, res.Reason)
	}
}
