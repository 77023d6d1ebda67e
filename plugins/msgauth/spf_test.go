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
