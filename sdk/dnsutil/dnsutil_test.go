package dnsutil_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

func TestReverse(t *testing.T) {
	tests := []struct{ ip, labels, name string }{
		{"203.0.113.5", "5.113.0.203", "5.113.0.203.in-addr.arpa."},
		{"::ffff:10.0.0.1", "1.0.0.10", "1.0.0.10.in-addr.arpa."},
		{"2001:db8::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2",
			"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.ip)
			if got := dnsutil.ReverseLabels(ip); got != tt.labels {
				t.Errorf("ReverseLabels = %q, want %q", got, tt.labels)
			}
			if got := dnsutil.ReverseName(ip); got != tt.name {
				t.Errorf("ReverseName = %q, want %q", got, tt.name)
			}
			want, _ := dns.ReverseAddr(ip.String())
			if got := dnsutil.ReverseName(ip); ip.Is6() && !ip.Is4In6() && got != want {
				t.Errorf("ReverseName = %q, miekg/dns says %q", got, want)
			}
		})
	}
}

// TestTexts: TXT strings come back as the bytes the record holds, not in
// miekg/dns's zone-file escaping: a DNSBL reason with quotes or a
// backslash reached the client's reply as \" and \\, and a CR LF as the
// letters \013\010.
func TestTexts(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"plain", `"Listed; see https://bl.example/q?ip=192.0.2.1"`, "Listed; see https://bl.example/q?ip=192.0.2.1"},
		{"quotes and backslash", `"see \"FAQ\" at C:\\lists"`, `see "FAQ" at C:\lists`},
		{"control bytes", `"Listed\013\010X-Injected: yes \027[31mRED"`, "Listed\r\nX-Injected: yes \x1b[31mRED"},
		{"UTF-8 and 8-bit", `"caf\195\169 \255"`, "caf\u00e9 \xff"},
		{"strings joined", `"Listed " "by BL" ""`, "Listed by BL"},
	}
	var zone []string
	for i, tc := range tests {
		zone = append(zone, fmt.Sprintf("t%d.example. 300 IN TXT %s", i, tc.data))
	}
	srv := dnsutiltest.New(t, zone...)
	r := &dnsutil.Resolver{Servers: []string{srv.Addr}, Timeout: time.Second}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := r.Lookup(context.Background(), fmt.Sprintf("t%d.example", i), dns.TypeTXT)
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Texts(); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("Texts() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	srv := dnsutiltest.New(t,
		"a.example. 300 IN A 192.0.2.1",
		"a.example. 60 IN A 192.0.2.2",
		"a.example. 300 IN TXT \"hello \" \"world\"",
		"1.2.0.192.in-addr.arpa. 300 IN PTR host.example.",
	)
	srv.ServFail("broken.example.")
	srv.Drop("slow.example.")
	r := &dnsutil.Resolver{Servers: []string{srv.Addr}, Timeout: 200 * time.Millisecond}
	ctx := context.Background()

	a, err := r.Lookup(ctx, "a.example", dns.TypeA)
	if err != nil || a.TTL != 60 || !slices.Equal(a.Addrs(), []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}) {
		t.Errorf("A: %+v %v", a, err)
	}
	if a, err := r.Lookup(ctx, "a.example", dns.TypeTXT); err != nil || !slices.Equal(a.Texts(), []string{"hello world"}) {
		t.Errorf("TXT: %+v %v", a, err)
	}
	if a, err := r.Lookup(ctx, dnsutil.ReverseName(netip.MustParseAddr("192.0.2.1")), dns.TypePTR); err != nil || !slices.Equal(a.Names(), []string{"host.example"}) {
		t.Errorf("PTR: %+v %v", a, err)
	}
	if a, err := r.Lookup(ctx, "a.example", dns.TypeAAAA); err != nil || len(a.Records) != 0 || a.NXDomain {
		t.Errorf("NODATA: %+v %v", a, err)
	}
	if a, err := r.Lookup(ctx, "none.example", dns.TypeA); err != nil || !a.NXDomain {
		t.Errorf("NXDOMAIN: %+v %v", a, err)
	}
	var de *dnsutil.Error
	if _, err := r.Lookup(ctx, "broken.example", dns.TypeA); !errors.As(err, &de) || de.Rcode != dns.RcodeServerFailure || de.Timeout() {
		t.Errorf("SERVFAIL: %v", err)
	}
	if _, err := r.Lookup(ctx, "slow.example", dns.TypeA); !errors.As(err, &de) || !de.Timeout() {
		t.Errorf("timeout: %v", err)
	}
	// A second server answers when the first does not.
	r2 := &dnsutil.Resolver{Servers: []string{"127.0.0.1:1", srv.Addr}, Timeout: 200 * time.Millisecond}
	if a, err := r2.Lookup(ctx, "a.example", dns.TypeA); err != nil || len(a.Addrs()) != 2 {
		t.Errorf("fallback: %+v %v", a, err)
	}
}

// TestLookupFailoverWithinDeadline: the stages give the resolver their
// whole budget as both Timeout and the context's deadline. A first server
// that never answers must leave time for the second, or a gateway with
// two resolvers in dns.servers fails every DNS stage while one is down.
func TestLookupFailoverWithinDeadline(t *testing.T) {
	silent := dnsutiltest.New(t)
	silent.Drop("a.example.")
	good := dnsutiltest.New(t, "a.example. 300 IN A 192.0.2.1")
	r := &dnsutil.Resolver{Servers: []string{silent.Addr, good.Addr}, Timeout: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	a, err := r.Lookup(ctx, "a.example", dns.TypeA)
	if err != nil || len(a.Addrs()) != 1 {
		t.Fatalf("the second server was not asked in time: %+v %v", a, err)
	}
	if silent.Queries("a.example.", "A") != 1 || good.Queries("a.example.", "A") != 1 {
		t.Errorf("queries: silent %d, good %d", silent.Queries("a.example.", "A"), good.Queries("a.example.", "A"))
	}
}

// TestLookupImpossibleNames: names DNS cannot hold are NXDOMAIN without a
// query, not failures: a sender picks HELO and MAIL FROM names, and a
// failure would buy them a stage's on_error.
func TestLookupImpossibleNames(t *testing.T) {
	srv := dnsutiltest.New(t)
	r := &dnsutil.Resolver{Servers: []string{srv.Addr}, Timeout: 2 * time.Second}
	long := "a123456789b123456789c123456789d123456789e123456789f123456789g1234" // 65 octets
	for _, name := range []string{long + ".example.test", "a..example.test", long[:60] + "." + long[:60] + "." + long[:60] + "." + long[:60] + "." + long[:60]} {
		a, err := r.Lookup(context.Background(), name, dns.TypeA)
		if err != nil || !a.NXDomain || len(a.Records) != 0 {
			t.Errorf("%s: %+v, %v; want NXDOMAIN", name, a, err)
		}
		if n := srv.Queries(dns.Fqdn(name), "A"); n != 0 {
			t.Errorf("%s: asked the server %d times", name, n)
		}
	}
}

// TestLookupLame: a server that neither holds the zone nor recurses
// answers NOERROR with nothing but a referral. That is no answer about the
// name: read as NODATA it would be "not listed" to a DNSBL stage and "no
// PTR" to rdns. It is a failure, and the next server is asked.
func TestLookupLame(t *testing.T) {
	lame := dnsutiltest.New(t, "a.example. 300 IN A 192.0.2.1")
	lame.Lame("a.example.")
	good := dnsutiltest.New(t, "a.example. 300 IN A 192.0.2.1")
	ctx := context.Background()

	r := &dnsutil.Resolver{Servers: []string{lame.Addr}, Timeout: time.Second}
	a, err := r.Lookup(ctx, "a.example", dns.TypeA)
	var de *dnsutil.Error
	if !errors.As(err, &de) || !errors.Is(err, dnsutil.ErrLameAnswer) || de.Rcode != -1 || de.Timeout() {
		t.Errorf("lame answer: %+v, %v; want an *Error with ErrLameAnswer", a, err)
	}
	r = &dnsutil.Resolver{Servers: []string{lame.Addr, good.Addr}, Timeout: time.Second}
	if a, err := r.Lookup(ctx, "a.example", dns.TypeA); err != nil || len(a.Addrs()) != 1 {
		t.Errorf("after a lame server: %+v, %v; want the second server's answer", a, err)
	}
	if lame.Queries("a.example.", "A") != 2 || good.Queries("a.example.", "A") != 1 {
		t.Errorf("queries: lame %d, good %d", lame.Queries("a.example.", "A"), good.Queries("a.example.", "A"))
	}
}

// TestLookupWrongQuestion: RFC 5452 9.1, a reply is an answer only to the
// question it repeats. One with the right ID but another name, type or
// class (or no question) is a failure from that server, never read as its
// NXDOMAIN or records for the name asked; the next server is asked.
func TestLookupWrongQuestion(t *testing.T) {
	tests := []struct {
		name    string
		rewrite func(m *dns.Msg)
	}{
		{"other name, NXDOMAIN", func(m *dns.Msg) {
			m.Question[0].Name = "unrelated.example."
			m.Answer, m.Rcode = nil, dns.RcodeNameError
		}},
		{"other name, records", func(m *dns.Msg) { m.Question[0].Name = "unrelated.example." }},
		{"other type", func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAAAA }},
		{"other class", func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }},
		{"no question", func(m *dns.Msg) { m.Question = nil }},
	}
	good := dnsutiltest.New(t, "a.example. 300 IN A 192.0.2.1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := dnsutiltest.New(t, "a.example. 300 IN A 192.0.2.1")
			bad.Rewrite("a.example.", tt.rewrite)
			r := &dnsutil.Resolver{Servers: []string{bad.Addr}, Timeout: time.Second}
			a, err := r.Lookup(context.Background(), "a.example", dns.TypeA)
			var de *dnsutil.Error
			if !errors.As(err, &de) || !errors.Is(err, dnsutil.ErrWrongQuestion) || de.Rcode != -1 {
				t.Errorf("got %+v, %v; want an *Error with ErrWrongQuestion", a, err)
			}
			r.Servers = append(r.Servers, good.Addr)
			if a, err := r.Lookup(context.Background(), "a.example", dns.TypeA); err != nil || len(a.Addrs()) != 1 {
				t.Errorf("with a good second server: %+v, %v", a, err)
			}
		})
	}
	// The question the server repeats in other letters, or a name the
	// caller wrote with escapes (\097 is a), is still the question.
	good.Rewrite("a.example.", func(m *dns.Msg) { m.Question[0].Name = "A.Example." })
	r := &dnsutil.Resolver{Servers: []string{good.Addr}, Timeout: time.Second}
	for _, name := range []string{"a.example", `\097.example`} {
		if a, err := r.Lookup(context.Background(), name, dns.TypeA); err != nil || len(a.Addrs()) != 1 {
			t.Errorf("%s: %+v, %v; want the answer", name, a, err)
		}
	}
}

// TestLookupOwners: only records owned by the name asked, or by a name its
// CNAME chain leads to, answer it. Another name's A record in the answer
// section must not read as a DNSBL listing, nor another name's address as
// one that confirms a PTR name.
func TestLookupOwners(t *testing.T) {
	srv := dnsutiltest.New(t,
		"q.example. 300 IN A 192.0.2.1",
		"alias.example. 300 IN CNAME mid.example.",
		"loop.example. 300 IN CNAME loop2.example.",
	)
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	srv.Rewrite("q.example.", func(m *dns.Msg) {
		m.Answer = append(m.Answer, rr("unrelated.example. 300 IN A 127.0.0.2"), rr("q.example. 300 CH A 127.0.0.3"))
	})
	srv.Rewrite("none.example.", func(m *dns.Msg) {
		m.Rcode, m.Answer = dns.RcodeSuccess, []dns.RR{rr("unrelated.example. 300 IN A 127.0.0.2")}
	})
	srv.Rewrite("alias.example.", func(m *dns.Msg) {
		m.Answer = append(m.Answer,
			rr("MID.example. 300 IN CNAME target.example."),
			rr("target.example. 60 IN A 192.0.2.9"),
			rr("elsewhere.example. 30 IN A 192.0.2.66"))
	})
	srv.Rewrite("loop.example.", func(m *dns.Msg) {
		m.Answer = append(m.Answer,
			rr("loop2.example. 300 IN CNAME loop.example."),
			rr("stray.example. 300 IN A 192.0.2.66"))
	})
	r := &dnsutil.Resolver{Servers: []string{srv.Addr}, Timeout: time.Second}
	tests := []struct {
		name string
		want []netip.Addr
		ttl  uint32
	}{
		{"q.example", []netip.Addr{netip.MustParseAddr("192.0.2.1")}, 300},
		{"none.example", nil, 0},
		{"alias.example", []netip.Addr{netip.MustParseAddr("192.0.2.9")}, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := r.Lookup(context.Background(), tt.name, dns.TypeA)
			if err != nil || !slices.Equal(a.Addrs(), tt.want) || a.TTL != tt.ttl {
				t.Errorf("got %+v, %v; want %v with TTL %d", a, err, tt.want, tt.ttl)
			}
		})
	}
	// A chain that comes round is no answer (a resolver would SERVFAIL),
	// not a name without records.
	if a, err := r.Lookup(context.Background(), "loop.example", dns.TypeA); !errors.Is(err, dnsutil.ErrCNAMELoop) {
		t.Errorf("CNAME loop: %+v, %v; want ErrCNAMELoop", a, err)
	}
}

func TestValidHostname(t *testing.T) {
	for name, want := range map[string]bool{
		"mail.example.test": true, "_dmarc.example.test": true, "a-b.example": true, "x": true,
		"": false, "a..b": false, "-a.example": false, "a-.example": false, "1.2.3.4": false,
		"mail example.test": false, "mail\\032x.test": false, strings.Repeat("a", 64) + ".test": false,
		strings.Repeat("a.", 127) + "test": false,
	} {
		if got := dnsutil.ValidHostname(name); got != want {
			t.Errorf("ValidHostname(%q) = %v, want %v", name, got, want)
		}
	}
}

// An answer too large for UDP (a 4 KB TXT record: long DKIM keys and SPF
// records get there) comes truncated, and the resolver asks again over TCP
// for the whole of it (RFC 7766): it used to be untested, as the test
// server spoke UDP only.
func TestTruncatedAnswerOverTCP(t *testing.T) {
	chunks := make([]string, 16)
	for i := range chunks {
		chunks[i] = fmt.Sprintf("%q", strings.Repeat(string(rune('a'+i)), 250))
	}
	srv := dnsutiltest.New(t, "big.test. 300 IN TXT "+strings.Join(chunks, " "))
	r, err := dnsutil.New([]string{srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.Lookup(context.Background(), "big.test", dns.TypeTXT)
	if err != nil {
		t.Fatal(err)
	}
	texts := a.Texts()
	if len(texts) != 1 || len(texts[0]) != 16*250 || !strings.HasSuffix(texts[0], strings.Repeat("p", 250)) {
		t.Errorf("got %d texts, the first %d bytes long; want one of %d", len(texts), len(texts[0]), 16*250)
	}
	if srv.TCPQueries("big.test", "TXT") != 1 {
		t.Errorf("asked %d times over TCP, want 1 (after the truncated UDP answer)", srv.TCPQueries("big.test", "TXT"))
	}
}
