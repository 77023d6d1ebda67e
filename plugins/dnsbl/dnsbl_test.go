package dnsbl

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// zoneRecords is the test DNS: 203.0.113.5 on bl (with a reason) and on
// combined (bit 2), 203.0.113.6 on bl with an uncounted code, 203.0.113.7
// on the DNSWL and bl, 2001:db8::5 on bl, spam.example on the RHSBL.
var zoneRecords = []string{
	"5.113.0.203.bl.test. 300 IN A 127.0.0.2",
	`5.113.0.203.bl.test. 300 IN TXT "Listed: see https://bl.test/q?203.0.113.5"`,
	"5.113.0.203.combined.test. 300 IN A 127.0.0.6",
	"6.113.0.203.bl.test. 300 IN A 127.0.0.10",
	"7.113.0.203.bl.test. 300 IN A 127.0.0.2",
	"7.113.0.203.wl.test. 300 IN A 127.0.10.2",
	"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test. 300 IN A 127.0.0.4",
	`5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test. 300 IN TXT "v6 listed"`,
	"spam.example.dbl.test. 300 IN A 127.0.1.2",
	"xn--zck5b2b.example.dbl.test. 300 IN A 127.0.1.2",
	`spam.example.dbl.test. 300 IN TXT "spam domain"`,
	"8.113.0.203.bl.test. 300 IN A 192.0.2.1",
	"9.113.0.203.bl.test. 300 IN A 127.255.255.254",
	"bl.test. 300 IN SOA ns.bl.test. root.bl.test. 1 3600 600 86400 120",
}

func testZones() []any {
	return []any{
		map[string]any{"zone": "bl.test", "weight": 2, "codes": []any{"127.0.0.2", "127.0.0.4-127.0.0.7"}},
		map[string]any{"zone": "combined.test", "weight": 0.5, "codes": []any{"mask:0.0.0.2"}},
		map[string]any{"zone": "wl.test", "allow": true},
		map[string]any{"zone": "dbl.test", "domain": true, "weight": 2},
	}
}

func newTestStage(t testing.TB, srv *dnsutiltest.Server, extra map[string]any) *Stage {
	t.Helper()
	s := New().(*Stage)
	cfg := map[string]any{"zones": testZones(), "threshold": 2, "timeout": "300ms"}
	for k, v := range extra {
		cfg[k] = v
	}
	if err := s.Configure(context.Background(), sdk.Env{DNSServers: []string{srv.Addr}}, cfg); err != nil {
		t.Fatal(err)
	}
	return s
}

func req(phase sdk.Phase, ip, helo, from string) *sdk.Request {
	return &sdk.Request{Phase: phase, Conn: sdk.Conn{IP: ip, HELO: helo}, Envelope: sdk.Envelope{From: from}}
}

func TestCheck(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	s := newTestStage(t, srv, nil)
	tests := []struct {
		name          string
		req           *sdk.Request
		verdict       sdk.Verdict
		zone, reason  string
		weight, codes string
		tags          []string
	}{
		{"listed with reason", req(sdk.PhaseHelo, "203.0.113.5", "h.example", ""), sdk.VerdictFail,
			"bl.test", "Listed: see https://bl.test/q?203.0.113.5", "2.5", "bl.test=127.0.0.2,combined.test=127.0.0.6",
			[]string{"bl.test", "combined.test"}},
		{"not listed", req(sdk.PhaseHelo, "203.0.113.99", "h.example", ""), sdk.VerdictNone, "", "", "0", "", nil},
		{"uncounted code", req(sdk.PhaseHelo, "203.0.113.6", "h.example", ""), sdk.VerdictNone, "", "", "0", "", nil},
		{"dnswl wins", req(sdk.PhaseHelo, "203.0.113.7", "h.example", ""), sdk.VerdictPass, "bl.test", "", "2",
			"bl.test=127.0.0.2", []string{"dnswl", "bl.test", "wl.test"}},
		{"ipv6 nibbles", req(sdk.PhaseHelo, "2001:db8::5", "h.example", ""), sdk.VerdictFail, "bl.test", "v6 listed", "2",
			"bl.test=127.0.0.4", []string{"bl.test"}},
		{"rhsbl helo", req(sdk.PhaseHelo, "203.0.113.99", "Spam.Example.", ""), sdk.VerdictFail, "dbl.test", "spam domain", "2",
			"dbl.test:helo=127.0.1.2", []string{"dbl.test:helo"}},
		{"rhsbl from only at mail", req(sdk.PhaseHelo, "203.0.113.99", "h.example", "x@spam.example"), sdk.VerdictNone, "", "", "0", "", nil},
		{"rhsbl from", req(sdk.PhaseMail, "203.0.113.99", "h.example", "x@spam.example"), sdk.VerdictFail, "dbl.test", "spam domain", "2",
			"dbl.test:from=127.0.1.2", []string{"dbl.test:from"}},
		{"rhsbl both count once", req(sdk.PhaseMail, "203.0.113.99", "spam.example", "x@spam.example"), sdk.VerdictFail, "dbl.test", "spam domain", "2",
			"dbl.test:helo=127.0.1.2,dbl.test:from=127.0.1.2", []string{"dbl.test:helo", "dbl.test:from"}},
		{"rhsbl on an IDN sender as A-labels", req(sdk.PhaseMail, "203.0.113.99", "h.example", "送信者@スパム.example"), sdk.VerdictFail, "dbl.test", "", "2",
			"dbl.test:from=127.0.1.2", []string{"dbl.test:from"}},
		{"address literal helo and null sender", req(sdk.PhaseMail, "203.0.113.99", "[203.0.113.99]", ""), sdk.VerdictNone, "", "", "0", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.Check(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			a := res.Attrs
			if res.Verdict != tt.verdict || a["zone"] != tt.zone || a["reason"] != tt.reason || a["weight"] != tt.weight || a["codes"] != tt.codes {
				t.Errorf("got %s %v", res.Verdict, a)
			}
			if !slices.Equal(res.Tags, tt.tags) {
				t.Errorf("tags %q, want %q", res.Tags, tt.tags)
			}
		})
	}
}

func TestBelowThreshold(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	s := newTestStage(t, srv, map[string]any{"threshold": 3})
	res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.5", "h.example", ""))
	if err != nil || res.Verdict != sdk.VerdictNeutral || res.Score != 2.5 {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestFailures: a zone that times out, SERVFAILs or answers outside
// 127/8 is an error, never "not listed"; listings that decide anyway still do.
func TestFailures(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	srv.Drop("99.113.0.203.bl.test.")
	srv.ServFail("98.113.0.203.bl.test.")
	srv.ServFail("5.113.0.203.combined.test.")
	s := newTestStage(t, srv, nil)
	for _, tt := range []struct{ name, ip, want string }{
		{"timeout", "203.0.113.99", "timeout"},
		{"servfail", "203.0.113.98", "SERVFAIL"},
		{"not a code", "203.0.113.8", "not a DNSBL code"},
		{"refused code", "203.0.113.9", "refused the query"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.Check(context.Background(), req(sdk.PhaseHelo, tt.ip, "h.example", ""))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %+v, %v; want an error with %q", res, err, tt.want)
			}
		})
	}
	res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.5", "h.example", ""))
	if err != nil || res.Verdict != sdk.VerdictFail || res.Attrs["errors"] != "combined.test" {
		t.Fatalf("listing with another zone failing: %+v %v", res, err)
	}
	// A DNSWL that failed might have passed the client: the block listing
	// does not decide then (a 554 for DNS trouble), the check is an error.
	srv.ServFail("7.113.0.203.wl.test.")
	if res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.7", "h.example", "")); err == nil {
		t.Fatalf("listed, with the DNSWL failing: %+v, want an error", res)
	}
	// A failure is not cached.
	n := srv.Queries("98.113.0.203.bl.test.", "A")
	_, _ = s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.98", "h.example", ""))
	if got := srv.Queries("98.113.0.203.bl.test.", "A"); got != n+1 {
		t.Errorf("SERVFAIL was cached: %d queries, want %d", got, n+1)
	}
}

// TestLameResolver: a resolver that does not resolve (recursion off: it
// answers NOERROR with a referral and no records) says nothing about a
// listing. The check is an error, never "not listed", and nothing is
// cached: the next check asks again.
func TestLameResolver(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	srv.Lame("10.113.0.203.bl.test.")
	s := newTestStage(t, srv, nil)
	for i := 1; i <= 2; i++ {
		res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.10", "h.example", ""))
		if err == nil || !strings.Contains(err.Error(), "lame answer") {
			t.Fatalf("check %d: got %+v, %v; want a lame-answer error", i, res, err)
		}
		if got := srv.Queries("10.113.0.203.bl.test.", "A"); got != i {
			t.Fatalf("check %d: %d queries: the lame answer was cached", i, got)
		}
	}
}

// TestForeignAnswers: RFC 5452 9.1, a reply that repeats another question
// says nothing of the one asked: its NXDOMAIN is not "not listed" (the
// check is an error). And an A record of another name in a reply to the
// right question is not a listing of the client (verdict none).
func TestForeignAnswers(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	srv.Rewrite("11.113.0.203.bl.test.", func(m *dns.Msg) {
		m.Question[0].Name = "unrelated.test."
		m.Rcode = dns.RcodeNameError
	})
	other, err := dns.NewRR("unrelated.test. 300 IN A 127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	srv.Rewrite("12.113.0.203.bl.test.", func(m *dns.Msg) { m.Answer = append(m.Answer, other) })
	s := newTestStage(t, srv, nil)
	res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.11", "h.example", ""))
	if err == nil || !strings.Contains(err.Error(), "reply to another question") {
		t.Errorf("reply to another question: got %+v, %v; want an error", res, err)
	}
	res, err = s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.12", "h.example", ""))
	if err != nil || res.Verdict != sdk.VerdictNone {
		t.Errorf("another name's A record: got %+v, %v; want verdict none", res, err)
	}
}

// TestCache moves the clock: answers are reused for their TTL (listings
// 300 s here, "not listed" for negative_ttl) and asked again after it.
func TestCache(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	now := time.Unix(1_800_000_000, 0)
	s := &Stage{now: func() time.Time { return now }}
	if err := s.Configure(context.Background(), sdk.Env{DNSServers: []string{srv.Addr}},
		map[string]any{"zones": testZones(), "negative_ttl": "30s"}); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		for _, ip := range []string{"203.0.113.5", "203.0.113.99"} {
			if _, err := s.Check(context.Background(), req(sdk.PhaseHelo, ip, "h.example", "")); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func() [4]int {
		return [4]int{srv.Queries("5.113.0.203.bl.test.", "A"), srv.Queries("5.113.0.203.bl.test.", "TXT"),
			srv.Queries("99.113.0.203.bl.test.", "A"), srv.Queries("h.example.dbl.test.", "A")}
	}
	check()
	if got := count(); got != [4]int{1, 1, 1, 1} {
		t.Fatalf("first check: queries %v", got)
	}
	now = now.Add(29 * time.Second)
	check()
	if got := count(); got != [4]int{1, 1, 1, 1} {
		t.Fatalf("within the TTLs: queries %v", got)
	}
	now = now.Add(2 * time.Second)
	check()
	if got := count(); got != [4]int{1, 1, 2, 2} {
		t.Fatalf("after negative_ttl: queries %v", got)
	}
	now = now.Add(300 * time.Second)
	check()
	if got := count(); got != [4]int{2, 2, 3, 3} {
		t.Fatalf("after the listing's TTL: queries %v", got)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"no zones", map[string]any{}, "at least one zone"},
		{"bad code", map[string]any{"zones": []any{map[string]any{"zone": "a.test", "codes": []any{"127.0.0.300"}}}}, "bad code"},
		{"bad range", map[string]any{"zones": []any{map[string]any{"zone": "a.test", "codes": []any{"127.0.0.9-127.0.0.2"}}}}, "bad code"},
		// Answers outside 127/8 are failures: such a code counted none.
		{"code outside 127/8", map[string]any{"zones": []any{map[string]any{"zone": "a.test", "codes": []any{"0.0.0.2"}}}}, `bad code "0.0.0.2": a list answers in 127.0.0.0/8`},
		{"range leaving 127/8", map[string]any{"zones": []any{map[string]any{"zone": "a.test", "codes": []any{"127.0.0.2-128.0.0.2"}}}}, "a list answers in 127.0.0.0/8"},
		{"bad mask", map[string]any{"zones": []any{map[string]any{"zone": "a.test", "codes": []any{"mask:x"}}}}, "bad mask"},
		{"twice", map[string]any{"zones": []any{"a.test", "A.test."}}, "twice"},
		{"bad name", map[string]any{"zones": []any{"a b"}}, "bad zone name"},
		// Each of these was asked as written, drew NXDOMAIN (or nothing) for
		// every client, and so never listed one.
		{"postfix codes in the name", map[string]any{"zones": []any{"zen.test=127.0.0.[2..11]"}}, "codes and weight are keys of their own"},
		{"postfix code in the name", map[string]any{"zones": []any{"zen.test=127.0.0.2"}}, "codes and weight are keys of their own"},
		{"postscreen weight in the name", map[string]any{"zones": []any{map[string]any{"zone": "zen.test*2"}}}, "codes and weight are keys of their own"},
		{"leading dot", map[string]any{"zones": []any{".zen.test"}}, "bad zone name .zen.test: not a DNS name"},
		{"semicolon", map[string]any{"zones": []any{"zen.test;"}}, "not a DNS name"},
		{"an address", map[string]any{"zones": []any{"127.0.0.1"}}, "not a DNS name"},
		{"too long for ipv6", map[string]any{"zones": []any{strings.Repeat("a.", 95) + "test"}}, "no room for an IPv6 client's query"},
		{"unknown zone key", map[string]any{"zones": []any{map[string]any{"zone": "a.test", "wieght": 1}}}, "unknown key"},
		{"unknown key", map[string]any{"zones": []any{"a.test"}, "treshold": 1}, "unknown key"},
		{"timeout", map[string]any{"zones": []any{"a.test"}, "timeout": "2"}, "timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := New().Configure(context.Background(), sdk.Env{DNSServers: []string{"127.0.0.1:53"}}, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
}

// TestConcurrent runs checks from many goroutines (go test -race) while
// the stage is reconfigured: every answer is right for its client.
func TestConcurrent(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	s := newTestStage(t, srv, nil)
	done := make(chan struct{})
	for g := 0; g < 8; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 50; i++ {
				ip, want := "203.0.113.5", sdk.VerdictFail
				if (g+i)%2 == 0 {
					ip, want = "203.0.113.99", sdk.VerdictNone
				}
				res, err := s.Check(context.Background(), req(sdk.PhaseHelo, ip, "h.example", ""))
				if err != nil || res.Verdict != want {
					t.Errorf("%s: %+v %v", ip, res, err)
					return
				}
			}
		}()
	}
	for i := 0; i < 5; i++ {
		if err := s.Configure(context.Background(), sdk.Env{DNSServers: []string{srv.Addr}},
			map[string]any{"zones": testZones(), "threshold": 2, "timeout": "1s"}); err != nil {
			t.Error(err)
		}
	}
	for g := 0; g < 8; g++ {
		<-done
	}
}

// TestZoneOptions: a zone given by name alone counts any 127/8 answer with
// weight 1; ipv6: false leaves IPv6 clients unasked.
func TestZoneOptions(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	s := New().(*Stage)
	if err := s.Configure(context.Background(), sdk.Env{DNSServers: []string{srv.Addr}}, map[string]any{
		"zones": []any{"bl.test", map[string]any{"zone": "combined.test", "ipv6": false}}}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.6", "", ""))
	if err != nil || res.Verdict != sdk.VerdictFail || res.Attrs["codes"] != "bl.test=127.0.0.10" || res.Score != 1 {
		t.Errorf("any code: %+v %v", res, err)
	}
	if _, err := s.Check(context.Background(), req(sdk.PhaseHelo, "2001:db8::5", "", "")); err != nil {
		t.Fatal(err)
	}
	const v6 = "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
	if srv.Queries(v6+".combined.test.", "A") != 0 || srv.Queries(v6+".bl.test.", "A") != 1 {
		t.Errorf("ipv6: false was asked, or the other zone was not")
	}
}

// TestNonPublicClient: loopback, private, shared (CGNAT), link-local and
// unique-local clients are never asked of the address zones. Every DNSBL
// lists 127.0.0.2 as its test entry (RFC 5782 5), so asking would block a
// local client, and private addresses mean nothing to a public list.
// RHSBL zones are still asked about the HELO domain.
func TestNonPublicClient(t *testing.T) {
	srv := dnsutiltest.New(t, append(zoneRecords,
		"2.0.0.127.bl.test. 300 IN A 127.0.0.2",
		"5.0.0.10.bl.test. 300 IN A 127.0.0.2",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test. 300 IN A 127.0.0.2",
	)...)
	s := newTestStage(t, srv, nil)
	for _, ip := range []string{"127.0.0.2", "::ffff:127.0.0.2", "10.0.0.5", "172.16.1.1", "192.168.1.1",
		"100.64.0.1", "169.254.1.1", "::1", "fe80::1", "fd00::1", "0.0.0.0"} {
		t.Run(ip, func(t *testing.T) {
			res, err := s.Check(context.Background(), req(sdk.PhaseHelo, ip, "h.example", ""))
			if err != nil || res.Verdict != sdk.VerdictNone {
				t.Fatalf("got %+v %v, want verdict none", res, err)
			}
		})
	}
	for _, name := range []string{"2.0.0.127.bl.test.", "5.0.0.10.bl.test.",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test."} {
		if n := srv.Queries(name, "A"); n != 0 {
			t.Errorf("%s asked %d times", name, n)
		}
	}
	if srv.Queries("h.example.dbl.test.", "A") == 0 {
		t.Error("RHSBL not asked for a private client")
	}
	res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "192.168.1.1", "spam.example", ""))
	if err != nil || res.Verdict != sdk.VerdictFail || res.Attrs["zone"] != "dbl.test" {
		t.Errorf("RHSBL listing from a private client: %+v %v", res, err)
	}
	// check_private: true asks about them all the same (a lab on loopback).
	lab := newTestStage(t, srv, map[string]any{"check_private": true})
	if _, err := lab.Check(context.Background(), req(sdk.PhaseHelo, "127.0.0.2", "h.example", "")); err != nil {
		t.Fatal(err)
	}
	if n := srv.Queries("2.0.0.127.bl.test.", "A"); n == 0 {
		t.Error("check_private: true did not ask about 127.0.0.2")
	}
	if _, err := parseConfig(map[string]any{"zones": testZones(), "check_private": "yes please"}); err == nil {
		t.Error("check_private must be a boolean")
	}
}

// txtFailing answers A queries from the test server and fails every TXT
// query while fail is set.
type txtFailing struct {
	resolver
	fail bool
}

func (r *txtFailing) Lookup(ctx context.Context, name string, qtype uint16) (*dnsutil.Answer, error) {
	if qtype == dns.TypeTXT && r.fail {
		return nil, &dnsutil.Error{Name: name, Type: "TXT", Rcode: dns.RcodeServerFailure}
	}
	return r.resolver.Lookup(ctx, name, qtype)
}

// TestReasonFailureNotCached: a TXT failure leaves the listing standing
// without a reason, but that reasonless listing is not cached for the
// record's TTL: the next check asks again and gets the reason.
func TestReasonFailureNotCached(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	s := newTestStage(t, srv, nil)
	st := *s.cur.Load()
	r := &txtFailing{resolver: st.res, fail: true}
	st.res = r
	s.cur.Store(&st)
	check := func() *sdk.Result {
		t.Helper()
		res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.5", "h.example", ""))
		if err != nil || res.Verdict != sdk.VerdictFail {
			t.Fatalf("%+v %v", res, err)
		}
		return res
	}
	if res := check(); res.Attrs["reason"] != "" {
		t.Fatalf("reason %q with TXT failing", res.Attrs["reason"])
	}
	r.fail = false
	if res := check(); res.Attrs["reason"] != "Listed: see https://bl.test/q?203.0.113.5" {
		t.Errorf("reason %q after TXT recovered: the reasonless listing was cached", res.Attrs["reason"])
	}
}

// TestFractionalWeights: weights that add up to the threshold reach it,
// although binary floating point does not hold them exactly (0.7 + 0.2 is
// 0.8999999999999999 there), and attrs.weight shows the decimal sum.
func TestFractionalWeights(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	s := New().(*Stage)
	zones := []any{
		map[string]any{"zone": "bl.test", "weight": 0.7},
		map[string]any{"zone": "combined.test", "weight": 0.2},
	}
	if err := s.Configure(context.Background(), sdk.Env{DNSServers: []string{srv.Addr}},
		map[string]any{"zones": zones, "threshold": 0.9}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.5", "h.example", ""))
	if err != nil || res.Verdict != sdk.VerdictFail || res.Score != 0.9 || res.Attrs["weight"] != "0.9" {
		t.Errorf("weights 0.7 + 0.2, threshold 0.9: %+v %v; want verdict fail, weight 0.9", res, err)
	}
}

// TestDNSWLRefused: DNSWL.org answers 127.0.0.255 to a resolver over its
// query limit. That is no listing: read as one (a zone without codes counts
// any 127/8 answer) it would vouch for every client. It is a failure, so a
// block listing still decides, and otherwise on_error does.
func TestDNSWLRefused(t *testing.T) {
	srv := dnsutiltest.New(t,
		"5.113.0.203.bl.test. 300 IN A 127.0.0.2",
		"5.113.0.203.wl.test. 300 IN A 127.0.0.255",
		"6.113.0.203.wl.test. 300 IN A 127.0.0.255",
	)
	s := newTestStage(t, srv, nil)
	res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.5", "h.example", ""))
	if err != nil || res.Verdict != sdk.VerdictFail || res.Attrs["errors"] != "wl.test" {
		t.Errorf("listed, DNSWL refusing: %+v %v; want verdict fail with wl.test failing", res, err)
	}
	res, err = s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.6", "h.example", ""))
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("DNSWL refusing: %+v %v; want an error", res, err)
	}
}

// TestCacheAcrossNewCodes: a new config keeps the cache (same resolvers),
// and an answer cached when the zone's codes did not count it had no
// reason asked. Once new codes count it, the listing must come with its
// TXT reason, not without one for the rest of the answer's TTL.
func TestCacheAcrossNewCodes(t *testing.T) {
	srv := dnsutiltest.New(t, append(zoneRecords, `6.113.0.203.bl.test. 300 IN TXT "policy listing"`)...)
	s := New().(*Stage)
	configure := func(codes ...any) {
		t.Helper()
		if err := s.Configure(context.Background(), sdk.Env{DNSServers: []string{srv.Addr}},
			map[string]any{"zones": []any{map[string]any{"zone": "bl.test", "codes": codes}}}); err != nil {
			t.Fatal(err)
		}
	}
	configure("127.0.0.2")
	if res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.6", "", "")); err != nil || res.Verdict != sdk.VerdictNone {
		t.Fatalf("127.0.0.10 not a code: %+v %v", res, err)
	}
	configure("127.0.0.2", "127.0.0.10")
	res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.6", "", ""))
	if err != nil || res.Verdict != sdk.VerdictFail || res.Attrs["reason"] != "policy listing" {
		t.Fatalf("127.0.0.10 a code now: %+v %v", res, err)
	}
	if n := srv.Queries("6.113.0.203.bl.test.", "TXT"); n != 1 {
		t.Errorf("TXT asked %d times", n)
	}
	// Cached with its reason now: asked no more.
	if res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.6", "", "")); err != nil || res.Attrs["reason"] != "policy listing" ||
		srv.Queries("6.113.0.203.bl.test.", "A") != 2 {
		t.Fatalf("from the cache: %+v %v, A asked %d times", res, err, srv.Queries("6.113.0.203.bl.test.", "A"))
	}
}

// TestConfigureDuringLookup (run with -race): a new config with the same
// resolvers keeps the cache and sets its size, while checks that began
// under the old config are still waiting for DNS and then store their
// answers. The size was read outside the cache's lock, a data race with
// every such reconfigure (SIGHUP) under traffic.
func TestConfigureDuringLookup(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	s := newTestStage(t, srv, map[string]any{"timeout": "10s"})
	asked := make(chan struct{})
	var once sync.Once
	srv.Rewrite("99.113.0.203.bl.test.", func(*dns.Msg) {
		once.Do(func() { close(asked) })
		// The answer waits for the new config below. Only the order
		// matters; nothing here is timed.
		time.Sleep(200 * time.Millisecond)
	})
	done := make(chan error, 1)
	go func() {
		_, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.99", "h.example", ""))
		done <- err
	}()
	<-asked
	if err := s.Configure(context.Background(), sdk.Env{DNSServers: []string{srv.Addr}},
		map[string]any{"zones": testZones(), "threshold": 2, "timeout": "10s", "cache_size": 500}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCacheAcrossAllowFlip: an answer cached while a zone blocked is read
// again under a new config that makes the zone an allow list: 127.0.0.255,
// an ordinary code to a block list, is DNSWL.org's "query refused" on an
// allow list, and must not read from the cache as a DNSWL listing (a pass
// that would let a listed client through).
func TestCacheAcrossAllowFlip(t *testing.T) {
	srv := dnsutiltest.New(t, "6.113.0.203.wl.test. 300 IN A 127.0.0.255")
	s := New().(*Stage)
	configure := func(allow bool) {
		t.Helper()
		if err := s.Configure(context.Background(), sdk.Env{DNSServers: []string{srv.Addr}},
			map[string]any{"zones": []any{map[string]any{"zone": "wl.test", "allow": allow}}}); err != nil {
			t.Fatal(err)
		}
	}
	configure(false)
	if res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.6", "", "")); err != nil || res.Verdict != sdk.VerdictFail {
		t.Fatalf("block zone answering 127.0.0.255: %+v %v", res, err)
	}
	configure(true)
	res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.6", "", ""))
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("allow zone answering 127.0.0.255 from the cache: %+v %v; want the refusal", res, err)
	}
}
