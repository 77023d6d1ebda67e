package dnsresolve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

func zone(t *testing.T) *dnstest.Server {
	return dnstest.New(t,
		"two.test. 300 IN MX 20 mx2.two.test.",
		"two.test. 300 IN MX 10 mx1.two.test.",
		"eq.test. 300 IN MX 10 a.eq.test.",
		"eq.test. 300 IN MX 10 b.eq.test.",
		"eq.test. 300 IN MX 10 c.eq.test.",
		"eq.test. 300 IN MX 5 first.eq.test.",
		"nomx.test. 300 IN A 127.0.0.9",
		"null.test. 300 IN MX 0 .",
		"nulls.test. 300 IN MX 0 .",
		"nulls.test. 300 IN MX 10 .",
		"nulls.test. 300 IN A 127.0.0.9",
		"halfnull.test. 300 IN MX 0 .",
		"halfnull.test. 300 IN MX 10 mx1.two.test.",
		"mx1.two.test. 300 IN A 127.0.0.2",
		"dual.test. 300 IN A 127.0.0.3",
		"dual.test. 300 IN AAAA ::1",
		"alias.test. 300 IN CNAME dual.test.",
		"chain.test. 300 IN CNAME alias.test.",
		"fail.test. 300 IN MX 10 x.fail.test.",
		"slow.test. 300 IN MX 10 x.slow.test.",
	)
}

func newResolver(t *testing.T, servers ...string) *Resolver {
	r, err := New(Options{Servers: servers, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLookupMX(t *testing.T) {
	s := zone(t)
	s.ServFail("fail.test")
	s.Drop("slow.test")
	r := newResolver(t, s.Addr)
	tests := []struct {
		name    string
		domain  string
		want    []MX
		wantErr func(*Error) bool
	}{
		{"sorted by preference", "two.test", []MX{{"mx1.two.test", 10}, {"mx2.two.test", 20}}, nil},
		{"no MX", "nomx.test", nil, nil},
		{"null MX", "null.test", nil, func(e *Error) bool { return e.NullMX && !e.Temporary }},
		// RFC 5321 5.1: MX records none of which is usable are no reason
		// to fall back to the A record.
		{"only null MX records", "nulls.test", nil, func(e *Error) bool { return e.NullMX && !e.Temporary }},
		{"null MX among hosts dropped", "halfnull.test", []MX{{"mx1.two.test", 10}}, nil},
		{"NXDOMAIN", "nonexistent.test", nil, func(e *Error) bool { return e.NotFound && !e.Temporary }},
		{"SERVFAIL is temporary", "fail.test", nil, func(e *Error) bool { return e.Temporary }},
		{"timeout is temporary", "slow.test", nil, func(e *Error) bool { return e.Temporary }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.LookupMX(context.Background(), tt.domain)
			if tt.wantErr != nil {
				var e *Error
				if !errors.As(err, &e) || !tt.wantErr(e) {
					t.Fatalf("err = %#v, want a matching *Error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLookupMXShufflesEqualPreferences(t *testing.T) {
	r := newResolver(t, zone(t).Addr)
	seen := map[string]bool{}
	for range 60 {
		got, err := r.LookupMX(context.Background(), "eq.test")
		if err != nil {
			t.Fatal(err)
		}
		if got[0].Host != "first.eq.test" {
			t.Fatalf("lowest preference not first: %v", got)
		}
		hosts := []string{got[1].Host, got[2].Host, got[3].Host}
		seen[hosts[0]] = true
		sort.Strings(hosts)
		if !reflect.DeepEqual(hosts, []string{"a.eq.test", "b.eq.test", "c.eq.test"}) {
			t.Fatalf("equal-preference hosts wrong: %v", got)
		}
	}
	// Each of three hosts leads with p=1/3; all three in 60 draws fails with p < 1e-10.
	if len(seen) != 3 {
		t.Errorf("equal preferences not shuffled: only %v ever came first", seen)
	}
}

func TestLookupIP(t *testing.T) {
	r := newResolver(t, zone(t).Addr)
	v4, v6 := netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("::1")
	tests := []struct {
		name, host string
		want       []netip.Addr
		notFound   bool
	}{
		{"IPv4 and IPv6", "dual.test", []netip.Addr{v4, v6}, false},
		{"CNAME", "alias.test", []netip.Addr{v4, v6}, false},
		{"CNAME chain", "chain.test", []netip.Addr{v4, v6}, false},
		{"literal", "[127.0.0.7]", []netip.Addr{netip.MustParseAddr("127.0.0.7")}, false},
		{"no address", "two.test", nil, true},
		{"NXDOMAIN", "nope.test", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.LookupIP(context.Background(), tt.host)
			if tt.notFound {
				var e *Error
				if !errors.As(err, &e) || !e.NotFound || IsTemporary(err) {
					t.Fatalf("err = %v, want permanent not found", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCacheHonoursTTL(t *testing.T) {
	s := zone(t)
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r, err := New(Options{Servers: []string{s.Addr}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if _, err := r.LookupMX(ctx, "two.test"); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Queries("two.test", "MX"); n != 1 {
		t.Fatalf("within TTL: %d queries, want 1", n)
	}
	mu.Lock()
	now = now.Add(301 * time.Second)
	mu.Unlock()
	if _, err := r.LookupMX(ctx, "two.test"); err != nil {
		t.Fatal(err)
	}
	if n := s.Queries("two.test", "MX"); n != 2 {
		t.Fatalf("after TTL: %d queries, want 2", n)
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := newCache(50, time.Now)
	for i := range 1000 {
		c.put(cacheKey{name: string(rune('a'+i%26)) + time.Duration(i).String(), qtype: 1}, &answer{ttl: 60})
		if c.len() > 50 {
			t.Fatalf("cache grew to %d entries, bound 50", c.len())
		}
	}
}

func TestFailoverToSecondServer(t *testing.T) {
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	dead.Close() // nothing listens there any more: the query times out or is refused
	r := newResolver(t, deadAddr, zone(t).Addr)
	got, err := r.LookupMX(context.Background(), "two.test")
	if err != nil || len(got) != 2 {
		t.Fatalf("got %v, %v; want the second server's answer", got, err)
	}
}

func TestResolvConf(t *testing.T) {
	s := zone(t)
	host, port, _ := net.SplitHostPort(s.Addr)
	path := t.TempDir() + "/resolv.conf"
	if err := os.WriteFile(path, []byte("nameserver "+host+"\noptions timeout:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{ResolvConf: path})
	if err != nil {
		t.Fatal(err)
	}
	if want := host + ":53"; r.servers[0] != want {
		t.Fatalf("servers = %v, want %s (resolv.conf has no port syntax; %s is the test port)", r.servers, want, port)
	}
}

// A domain with more MX hosts than a UDP answer holds (1232 octets) gets a
// truncated answer, and the resolver asks again over TCP for all of them
// (RFC 7766), rather than deliver by the first few or fail.
func TestMXOverTCP(t *testing.T) {
	var rrs []string
	for i := range 60 {
		rrs = append(rrs, fmt.Sprintf("many.test. 300 IN MX %d a-rather-long-mail-exchanger-name-%02d.many.test.", i, i))
	}
	srv := dnstest.New(t, rrs...)
	r, err := New(Options{Servers: []string{srv.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mxs, err := r.LookupMX(context.Background(), "many.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(mxs) != 60 || mxs[0].Host != "a-rather-long-mail-exchanger-name-00.many.test" {
		t.Errorf("got %d MX hosts (first %+v), want 60", len(mxs), mxs[0])
	}
	if n := srv.TCPQueries("many.test", "MX"); n != 1 {
		t.Errorf("asked %d times over TCP, want 1 (after the truncated UDP answer)", n)
	}
}
