package dnsresolve

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// serve starts a DNS server on 127.0.0.1:0 (UDP) whose replies reply builds
// from the query, for answers the zone server never gives: lame, forged,
// looping. A nil reply sends nothing.
func serve(t *testing.T, reply func(req *dns.Msg) *dns.Msg) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			if m := reply(req); m != nil {
				w.WriteMsg(m)
			}
		})}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// recursive is a reply as a recursive resolver gives it (RA set).
func recursive(req *dns.Msg, rrs ...dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	m.Answer = rrs
	return m
}

// wantTemporary fails unless err is a temporary *Error: mail is deferred,
// never bounced.
func wantTemporary(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || !e.Temporary || e.NotFound || e.NullMX {
		t.Fatalf("err = %v, want a temporary *Error", err)
	}
}

// RFC 5452 9.1: a reply whose question is not ours does not answer it. Its
// NXDOMAIN must not bounce mail; the next server is asked.
func TestReplyToAnotherQuestionIgnored(t *testing.T) {
	forged := serve(t, func(req *dns.Msg) *dns.Msg {
		m := recursive(req)
		m.Question[0].Name = "unrelated.test."
		m.Rcode = dns.RcodeNameError
		return m
	})
	for _, tt := range []struct {
		name  string
		reply func(req *dns.Msg) *dns.Msg
	}{
		{"other type", func(req *dns.Msg) *dns.Msg {
			m := recursive(req)
			m.Question[0].Qtype = dns.TypeTXT
			m.Rcode = dns.RcodeNameError
			return m
		}},
		{"other class", func(req *dns.Msg) *dns.Msg {
			m := recursive(req)
			m.Question[0].Qclass = dns.ClassCHAOS
			m.Rcode = dns.RcodeNameError
			return m
		}},
		{"no question", func(req *dns.Msg) *dns.Msg {
			m := recursive(req)
			m.Question = nil
			m.Rcode = dns.RcodeNameError
			return m
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newResolver(t, serve(t, tt.reply)).LookupMX(context.Background(), "victim.test")
			wantTemporary(t, err)
		})
	}
	t.Run("other name", func(t *testing.T) {
		_, err := newResolver(t, forged).LookupMX(context.Background(), "victim.test")
		wantTemporary(t, err)
	})
	t.Run("next server answers", func(t *testing.T) {
		got, err := newResolver(t, forged, zone(t).Addr).LookupMX(context.Background(), "two.test")
		if err != nil || len(got) != 2 {
			t.Fatalf("got %v, %v; want the second server's two MX hosts", got, err)
		}
	})
	t.Run("name in other case", func(t *testing.T) {
		// Some servers echo the question in the case they store (or 0x20
		// randomisation); names compare case-insensitively (RFC 4343).
		r := newResolver(t, serve(t, func(req *dns.Msg) *dns.Msg {
			m := recursive(req, mustRR(t, "Victim.TEST. 60 IN MX 10 mx.victim.test."))
			m.Question[0].Name = "Victim.TEST."
			return m
		}))
		got, err := r.LookupMX(context.Background(), "victim.test")
		if err != nil || len(got) != 1 {
			t.Fatalf("got %v, %v; want mx.victim.test", got, err)
		}
	})
}

// A server with recursion off answers a recursive query with a referral
// (NOERROR, no answer, no AA, no RA, NS records and no SOA): that is no
// answer, not "the name has no records", which would bounce the mail. The
// next server is asked; if none answers, the lookup is temporary. A real
// NODATA (SOA in authority, or from a recursive server) stays NODATA.
func TestLameReferralIsNoAnswer(t *testing.T) {
	referral := func(ra bool, ns ...dns.RR) func(*dns.Msg) *dns.Msg {
		return func(req *dns.Msg) *dns.Msg {
			m := new(dns.Msg)
			m.SetReply(req)
			m.RecursionAvailable = ra
			m.Ns = ns
			return m
		}
	}
	root := mustRR(t, ". 518400 IN NS a.root-servers.net.")
	soa := mustRR(t, "test. 300 IN SOA ns.test. host.test. 1 3600 600 86400 60")
	for _, tt := range []struct {
		name  string
		reply func(*dns.Msg) *dns.Msg
		lame  bool
	}{
		{"upward referral to the root", referral(false, root), true},
		{"referral from a server that claims recursion", referral(true, root), true},
		{"empty reply, no RA, no AA", referral(false), true},
		{"NODATA with SOA", referral(false, soa), false},
		{"NODATA from a recursive server without SOA", referral(true), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newResolver(t, serve(t, tt.reply))
			ctx := context.Background()
			mxs, err := r.LookupMX(ctx, "example.test")
			if !tt.lame {
				if err != nil || mxs != nil {
					t.Fatalf("LookupMX = %v, %v; want no MX records (NODATA)", mxs, err)
				}
				return
			}
			wantTemporary(t, err)
			_, err = r.LookupIP(ctx, "example.test")
			wantTemporary(t, err)
			if r.cache.len() != 0 {
				t.Errorf("%d answers cached, want none", r.cache.len())
			}
			r = newResolver(t, serve(t, tt.reply), zone(t).Addr)
			if got, err := r.LookupMX(ctx, "two.test"); err != nil || len(got) != 2 {
				t.Errorf("with a second server: %v, %v; want its two MX hosts", got, err)
			}
		})
	}
}

// Like SERVFAIL, an rcode that says the server cannot answer (NOTIMP,
// FORMERR, REFUSED) moves on to the next server and is not cached.
func TestFailoverOnServerRcodes(t *testing.T) {
	for _, rcode := range []int{dns.RcodeNotImplemented, dns.RcodeFormatError, dns.RcodeRefused, dns.RcodeServerFailure} {
		t.Run(dns.RcodeToString[rcode], func(t *testing.T) {
			var queries atomic.Int32
			bad := serve(t, func(req *dns.Msg) *dns.Msg {
				queries.Add(1)
				m := new(dns.Msg)
				m.SetRcode(req, rcode)
				return m
			})
			ctx := context.Background()
			if got, err := newResolver(t, bad, zone(t).Addr).LookupMX(ctx, "two.test"); err != nil || len(got) != 2 {
				t.Errorf("with a second server: %v, %v; want its two MX hosts", got, err)
			}
			r := newResolver(t, bad)
			for range 2 {
				_, err := r.LookupMX(ctx, "two.test")
				wantTemporary(t, err)
			}
			if n := queries.Load(); n != 3 {
				t.Errorf("server asked %d times, want 3 (the failure is not cached)", n)
			}
		})
	}
}

// A CNAME loop inside one reply is a DNS failure, as resolvers SERVFAIL it:
// the mail waits for the zone to be fixed. It used to read as "no records"
// and bounce. The loop is not cached either.
func TestCNAMELoopIsTemporary(t *testing.T) {
	for _, tt := range []struct {
		name  string
		chain []string
	}{
		{"two names", []string{"loop.test. 300 IN CNAME x.loop.test.", "x.loop.test. 300 IN CNAME loop.test."}},
		{"back to the middle", []string{"loop.test. 300 IN CNAME b.test.", "b.test. 300 IN CNAME c.test.", "c.test. 300 IN CNAME b.test."}},
		{"to itself", []string{"loop.test. 300 IN CNAME LOOP.test."}},
		{"longer than resolvers follow", []string{
			"loop.test. 300 IN CNAME c1.test.", "c1.test. 300 IN CNAME c2.test.", "c2.test. 300 IN CNAME c3.test.",
			"c3.test. 300 IN CNAME c4.test.", "c4.test. 300 IN CNAME c5.test.", "c5.test. 300 IN CNAME c6.test.",
			"c6.test. 300 IN CNAME c7.test.", "c7.test. 300 IN CNAME c8.test.", "c8.test. 300 IN CNAME c9.test.",
			"c9.test. 300 IN A 127.0.0.1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var rrs []dns.RR
			for _, s := range tt.chain {
				rrs = append(rrs, mustRR(t, s))
			}
			r := newResolver(t, serve(t, func(req *dns.Msg) *dns.Msg { return recursive(req, rrs...) }))
			ctx := context.Background()
			_, err := r.LookupMX(ctx, "loop.test")
			wantTemporary(t, err)
			_, err = r.LookupIP(ctx, "loop.test")
			wantTemporary(t, err)
			if r.cache.len() != 0 {
				t.Errorf("%d answers cached, want none", r.cache.len())
			}
		})
	}
}

// Records whose owner is neither the name asked nor on its CNAME chain are
// not part of the answer (RFC 5452 9.1); a reply made only of such records
// does not answer and is a failure, not "no records".
func TestRecordsOfOtherOwnersIgnored(t *testing.T) {
	answers := map[string][]string{
		"mixed.test.": {"evil.test. 300 IN A 127.0.0.66", "mixed.test. 300 IN A 127.0.0.1"},
		"chain.test.": {"chain.test. 300 IN CNAME end.test.", "evil.test. 300 IN A 127.0.0.66", "end.test. 300 IN A 127.0.0.2"},
		"only.test.":  {"evil.test. 300 IN A 127.0.0.66"},
	}
	parsed := map[string][]dns.RR{}
	for name, rrs := range answers {
		for _, s := range rrs {
			parsed[name] = append(parsed[name], mustRR(t, s))
		}
	}
	r := newResolver(t, serve(t, func(req *dns.Msg) *dns.Msg {
		if req.Question[0].Qtype != dns.TypeA {
			return recursive(req)
		}
		return recursive(req, parsed[req.Question[0].Name]...)
	}))
	ctx := context.Background()
	for host, want := range map[string]string{"mixed.test": "127.0.0.1", "chain.test": "127.0.0.2"} {
		got, err := r.LookupIP(ctx, host)
		if err != nil || len(got) != 1 || got[0].String() != want {
			t.Errorf("%s: %v, %v; want only %s", host, got, err, want)
		}
	}
	_, err := r.LookupIP(ctx, "only.test")
	wantTemporary(t, err)
}

// RFC 2181 8: a TTL with the top bit set means 0, so the answer is not
// kept at all; any other TTL is kept at most maxTTL (one day).
func TestTTLBounds(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ttl    uint32
		asks   []time.Duration // lookups at these times after the first
		wantQs int32
	}{
		{"top bit set is zero", 0x80000000, []time.Duration{time.Second}, 2},
		{"largest TTL is zero too", 0xffffffff, []time.Duration{time.Second}, 2},
		{"a week is kept a day", 7 * 86400, []time.Duration{maxTTL*time.Second - time.Second, maxTTL * time.Second}, 2},
		{"below the cap as given", 600, []time.Duration{599 * time.Second, 600 * time.Second}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var queries atomic.Int32
			addr := serve(t, func(req *dns.Msg) *dns.Msg {
				queries.Add(1)
				a := &dns.A{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: tt.ttl}, A: net.IPv4(127, 0, 0, 9)}
				return recursive(req, a)
			})
			start := time.Unix(1_700_000_000, 0)
			var now atomic.Int64
			now.Store(start.UnixNano())
			r, err := New(Options{Servers: []string{addr}, Now: func() time.Time { return time.Unix(0, now.Load()) }})
			if err != nil {
				t.Fatal(err)
			}
			lookup := func() {
				if _, err := r.lookup(context.Background(), "ttl.test", dns.TypeA); err != nil {
					t.Fatal(err)
				}
			}
			lookup()
			for _, d := range tt.asks {
				now.Store(start.Add(d).UnixNano())
				lookup()
			}
			if n := queries.Load(); n != tt.wantQs {
				t.Errorf("server asked %d times, want %d", n, tt.wantQs)
			}
		})
	}
}
