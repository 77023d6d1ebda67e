package rdns

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

var records = []string{
	"5.113.0.203.in-addr.arpa. 300 IN PTR mx.example.",
	"mx.example. 300 IN A 203.0.113.5",
	"6.113.0.203.in-addr.arpa. 300 IN PTR liar.example.",
	"liar.example. 300 IN A 192.0.2.1",
	"7.113.0.203.in-addr.arpa. 300 IN PTR old.example.",
	"7.113.0.203.in-addr.arpa. 300 IN PTR dhcp-203-0-113-7.pool.isp.example.",
	"dhcp-203-0-113-7.pool.isp.example. 300 IN A 203.0.113.7",
	"8.113.0.203.in-addr.arpa. 300 IN PTR broken.example.",
	"9.113.0.203.in-addr.arpa. 300 IN PTR nowhere.example.",
	"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 300 IN PTR v6.example.",
	"v6.example. 300 IN AAAA 2001:db8::1",
	"v6.example. 300 IN A 203.0.113.200",
}

func newStage(t *testing.T, srv *dnsutiltest.Server) *Stage {
	t.Helper()
	s := New().(*Stage)
	if err := s.Configure(context.Background(), sdk.Env{DNSServers: []string{srv.Addr}},
		map[string]any{"timeout": "300ms"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheck(t *testing.T) {
	srv := dnsutiltest.New(t, records...)
	srv.ServFail("broken.example.")
	srv.ServFail("10.113.0.203.in-addr.arpa.")
	srv.Drop("11.113.0.203.in-addr.arpa.")
	s := newStage(t, srv)
	tests := []struct {
		name, ip  string
		verdict   sdk.Verdict
		tags      []string
		host, ptr string
		err       string
	}{
		{"confirmed", "203.0.113.5", sdk.VerdictPass, []string{"confirmed"}, "mx.example", "mx.example", ""},
		{"mapped address", "::ffff:203.0.113.5", sdk.VerdictPass, []string{"confirmed"}, "mx.example", "mx.example", ""},
		{"mismatch", "203.0.113.6", sdk.VerdictFail, []string{"mismatch"}, "", "liar.example", ""},
		{"second name confirms, dynamic", "203.0.113.7", sdk.VerdictPass, []string{"confirmed", "dynamic"},
			"dhcp-203-0-113-7.pool.isp.example", "", ""},
		{"no ptr", "203.0.113.99", sdk.VerdictFail, []string{"no_ptr"}, "", "", ""},
		{"forward nxdomain is a mismatch", "203.0.113.9", sdk.VerdictFail, []string{"mismatch"}, "", "nowhere.example", ""},
		{"ipv6 confirmed by AAAA", "2001:db8::1", sdk.VerdictPass, []string{"confirmed"}, "v6.example", "v6.example", ""},
		{"forward servfail", "203.0.113.8", "", nil, "", "", "SERVFAIL"},
		{"ptr servfail", "203.0.113.10", "", nil, "", "", "SERVFAIL"},
		{"ptr timeout", "203.0.113.11", "", nil, "", "", "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseHelo, Conn: sdk.Conn{IP: tt.ip}})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %+v %v, want error %q", res, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tt.verdict || !slices.Equal(res.Tags, tt.tags) || res.Attrs["hostname"] != tt.host {
				t.Errorf("got %s %q %v", res.Verdict, res.Tags, res.Attrs)
			}
			if tt.ptr != "" && res.Attrs["ptr"] != tt.ptr {
				t.Errorf("ptr %q, want %q", res.Attrs["ptr"], tt.ptr)
			}
		})
	}
}

func TestDynamic(t *testing.T) {
	st := &state{}
	if err := (&Stage{}).Configure(context.Background(), sdk.Env{DNSServers: []string{"127.0.0.1:1"}},
		map[string]any{"dynamic_patterns": []any{`^ip\d`}}); err != nil {
		t.Fatal(err)
	}
	st.dynamic, _ = patterns([]any{`^ip\d`})
	tests := []struct {
		name, ip string
		want     bool
	}{
		{"mx.example.com", "203.0.113.5", false},
		{"mail.example.co", "203.0.113.5", false},
		{"mailhost.corp.example", "203.0.113.5", false},
		{"host1.example.com", "203.0.113.5", false},
		{"mail.home.example.com", "203.0.113.5", false},
		{"p5-113-0-203.dip0.t-ipconnect.de", "203.0.113.5", true},
		{"203.0.113.5.static.isp.example", "203.0.113.5", true},
		{"host-203-0-113-5.isp.example", "203.0.113.5", true},
		{"cb007105.isp.example", "203.0.113.5", true},
		{"pool-1.isp.example", "198.51.100.9", true},
		{"adsl.isp.example", "198.51.100.9", true},
		{"kd106180005200.au-net.ne.jp", "106.180.5.200", true},
		{"ip1.example.net", "198.51.100.9", true},
		{"x.ip-2001-db8--abcd-1234-5678-9abc.example.net", "2001:db8::abcd:1234:5678:9abc", true},
		{"www.example.net", "2001:db8::abcd:1234:5678:9abc", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := st.isDynamic(tt.name, netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Errorf("isDynamic(%s, %s) = %v, want %v", tt.name, tt.ip, got, tt.want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []map[string]any{
		{"timeout": "0s"}, {"timeout": 2}, {"max_names": 0}, {"dynamic_patterns": []any{"("}}, {"timout": "1s"},
	} {
		if err := New().Configure(context.Background(), sdk.Env{DNSServers: []string{"127.0.0.1:1"}}, cfg); err == nil {
			t.Errorf("%v: no error", cfg)
		}
	}
}

func TestOverProtocol(t *testing.T) {
	srv := dnsutiltest.New(t, records...)
	c := plugintest.Start(t, New())
	if err := c.Configure(sdk.Env{StageName: "rdns", DNSServers: []string{srv.Addr}}, map[string]any{"timeout": "2s"}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseHelo, Conn: sdk.Conn{IP: "203.0.113.7"}})
	if err != nil || res.Verdict != sdk.VerdictPass || res.Attrs["hostname"] != "dhcp-203-0-113-7.pool.isp.example" ||
		!slices.Contains(res.Tags, "dynamic") {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestSlowNameDoesNotStarveOthers: a PTR set with a name whose forward
// lookup hangs (a dead or slow zone) and one that confirms passes; the
// names are not tried one after another on one deadline.
func TestSlowNameDoesNotStarveOthers(t *testing.T) {
	srv := dnsutiltest.New(t,
		"12.113.0.203.in-addr.arpa. 300 IN PTR stale.dead.example.",
		"12.113.0.203.in-addr.arpa. 300 IN PTR mail.example.",
		"mail.example. 300 IN A 203.0.113.12",
	)
	srv.Drop("stale.dead.example.")
	s := newStage(t, srv)
	res, err := s.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseHelo, Conn: sdk.Conn{IP: "203.0.113.12"}})
	if err != nil || res.Verdict != sdk.VerdictPass || res.Attrs["hostname"] != "mail.example" {
		t.Fatalf("got %+v, %v; want pass as mail.example", res, err)
	}
}

// TestLameResolver: a lame answer (NOERROR, no records, no authority, no
// recursion: a server that does not resolve) to the PTR query is a DNS
// failure, not "no PTR record"; to the forward query it leaves the name
// unconfirmed for want of an answer, not a mismatch. Both are errors, for
// the stage's on_error to decide.
func TestLameResolver(t *testing.T) {
	srv := dnsutiltest.New(t,
		"18.113.0.203.in-addr.arpa. 300 IN PTR mail.example.",
		"19.113.0.203.in-addr.arpa. 300 IN PTR lame.example.",
		"lame.example. 300 IN A 203.0.113.19",
	)
	srv.Lame("18.113.0.203.in-addr.arpa.")
	srv.Lame("lame.example.")
	s := newStage(t, srv)
	for _, ip := range []string{"203.0.113.18", "203.0.113.19"} {
		t.Run(ip, func(t *testing.T) {
			res, err := s.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseHelo, Conn: sdk.Conn{IP: ip}})
			if err == nil || !strings.Contains(err.Error(), "lame answer") {
				t.Fatalf("got %+v, %v; want a lame-answer error", res, err)
			}
		})
	}
}

// TestForeignAnswers: only records of the name asked answer it. Another
// name's PTR record is no PTR for the client, and another name's A record
// holding the client's address does not confirm the PTR name. A reply to
// another question (RFC 5452 9.1) is a failure, not the absence it claims.
func TestForeignAnswers(t *testing.T) {
	srv := dnsutiltest.New(t,
		"21.113.0.203.in-addr.arpa. 300 IN PTR forged.example.",
		"forged.example. 300 IN A 192.0.2.1",
	)
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	srv.Rewrite("20.113.0.203.in-addr.arpa.", func(m *dns.Msg) {
		m.Rcode, m.Answer = dns.RcodeSuccess, []dns.RR{rr("5.113.0.203.in-addr.arpa. 300 IN PTR mx.example.")}
	})
	srv.Rewrite("forged.example.", func(m *dns.Msg) {
		m.Answer = append(m.Answer, rr("other.example. 300 IN A 203.0.113.21"))
	})
	srv.Rewrite("22.113.0.203.in-addr.arpa.", func(m *dns.Msg) {
		m.Question[0].Name = "unrelated.example."
		m.Rcode = dns.RcodeNameError
	})
	s := newStage(t, srv)
	tests := []struct {
		ip, result string
	}{
		{"203.0.113.20", "no_ptr"},
		{"203.0.113.21", "mismatch"},
		{"203.0.113.22", ""}, // an error
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			res, err := s.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseHelo, Conn: sdk.Conn{IP: tt.ip}})
			switch {
			case tt.result == "":
				if err == nil || !strings.Contains(err.Error(), "reply to another question") {
					t.Fatalf("got %+v, %v; want an error", res, err)
				}
			case err != nil || res.Verdict != sdk.VerdictFail || res.Attrs["result"] != tt.result:
				t.Fatalf("got %+v, %v; want fail, %s", res, err, tt.result)
			}
		})
	}
}

// TestInvalidPTRNames: a PTR name that is not a host name (RFC 1123 2.1
// letters, digits and hyphens; '_' tolerated as Postfix and Go's resolver
// do) is never confirmed, even when its owner gave it an A record: it
// would reach rules and logs as conn's host name. An all-numeric name
// ("203.0.113.14") is refused too, as Postfix does, since it reads as an
// address.
func TestInvalidPTRNames(t *testing.T) {
	srv := dnsutiltest.New(t,
		`13.113.0.203.in-addr.arpa. 300 IN PTR mail\ example.evil.example.`,
		`mail\ example.evil.example. 300 IN A 203.0.113.13`,
		"14.113.0.203.in-addr.arpa. 300 IN PTR 203.0.113.14.",
		"203.0.113.14. 300 IN A 203.0.113.14",
		`15.113.0.203.in-addr.arpa. 300 IN PTR b\195\188cher.example.`,
		`b\195\188cher.example. 300 IN A 203.0.113.15`,
		"16.113.0.203.in-addr.arpa. 300 IN PTR _mx.under_score.example.",
		"_mx.under_score.example. 300 IN A 203.0.113.16",
		"17.113.0.203.in-addr.arpa. 300 IN PTR xn--bcher-kva.example.",
		"xn--bcher-kva.example. 300 IN A 203.0.113.17",
	)
	s := newStage(t, srv)
	tests := []struct {
		ip      string
		verdict sdk.Verdict
		host    string
	}{
		{"203.0.113.13", sdk.VerdictFail, ""},
		{"203.0.113.14", sdk.VerdictFail, ""},
		{"203.0.113.15", sdk.VerdictFail, ""},
		{"203.0.113.16", sdk.VerdictPass, "_mx.under_score.example"},
		{"203.0.113.17", sdk.VerdictPass, "xn--bcher-kva.example"},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			res, err := s.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseHelo, Conn: sdk.Conn{IP: tt.ip}})
			if err != nil || res.Verdict != tt.verdict || res.Attrs["hostname"] != tt.host {
				t.Fatalf("got %+v, %v; want %s hostname %q", res, err, tt.verdict, tt.host)
			}
		})
	}
}

// TestZonedAddress: a link-local client address carries a zone
// (fe80::1%eth0); DNS addresses never do, and the comparison must not
// depend on it.
func TestZonedAddress(t *testing.T) {
	srv := dnsutiltest.New(t,
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa. 300 IN PTR ll.example.",
		"ll.example. 300 IN AAAA fe80::1",
	)
	s := newStage(t, srv)
	res, err := s.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseHelo, Conn: sdk.Conn{IP: "fe80::1%eth0"}})
	if err != nil || res.Verdict != sdk.VerdictPass || res.Attrs["hostname"] != "ll.example" {
		t.Fatalf("got %+v, %v; want pass as ll.example", res, err)
	}
}
