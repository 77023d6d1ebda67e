package msgauth

import (
	"testing"

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
