package dnsbl

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

func configured(t *testing.T, s *Stage, srv *dnsutiltest.Server, cfg map[string]any) {
	t.Helper()
	if err := s.Configure(context.Background(), sdk.Env{DNSServers: []string{srv.Addr}}, cfg); err != nil {
		t.Fatal(err)
	}
}

// TestMaxTTL: a listing is cached min(its TTL, max_ttl).
func TestMaxTTL(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	now := time.Unix(1_800_000_000, 0)
	s := &Stage{now: func() time.Time { return now }}
	configured(t, s, srv, map[string]any{"zones": []any{"bl.test"}, "max_ttl": "60s"})
	for _, step := range []struct {
		after time.Duration
		want  int
	}{{0, 1}, {59 * time.Second, 1}, {time.Second, 2}} {
		now = now.Add(step.after)
		if _, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.5", "", "")); err != nil {
			t.Fatal(err)
		}
		if n := srv.Queries("5.113.0.203.bl.test.", "A"); n != step.want {
			t.Fatalf("+%s: asked %d times, want %d", step.after, n, step.want)
		}
	}
}

// TestCacheExpiresAtTTL: an answer is not served once its TTL has run
// out, at the very second (RFC 1035 3.2.1).
func TestCacheExpiresAtTTL(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := newCache(10, func() time.Time { return now })
	c.put("k", outcome{}, 30*time.Second)
	now = now.Add(30 * time.Second)
	if _, ok := c.get("k"); ok {
		t.Error("served at its expiry")
	}
}

// TestCacheSize: cache_size 0 caches nothing; otherwise the cache holds
// at most cache_size entries.
func TestCacheSize(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	s := New().(*Stage)
	configured(t, s, srv, map[string]any{"zones": []any{"bl.test"}, "cache_size": 0})
	for i := 1; i <= 2; i++ {
		if _, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.5", "", "")); err != nil {
			t.Fatal(err)
		}
		if n := srv.Queries("5.113.0.203.bl.test.", "A"); n != i {
			t.Fatalf("cache_size 0, check %d: asked %d times", i, n)
		}
	}
	c := newCache(2, time.Now)
	for _, k := range []string{"a", "b", "c", "d"} {
		c.put(k, outcome{}, time.Minute)
		if len(c.m) > 2 {
			t.Fatalf("after %s: %d entries, max 2", k, len(c.m))
		}
	}
}

// TestCacheKeptAcrossConfigure: a new config with the same resolvers keeps
// the cached answers.
func TestCacheKeptAcrossConfigure(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	s := New().(*Stage)
	for i := 0; i < 2; i++ {
		configured(t, s, srv, map[string]any{"zones": []any{"bl.test"}, "threshold": 1 + i})
		if _, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.5", "", "")); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Queries("5.113.0.203.bl.test.", "A"); n != 1 {
		t.Errorf("asked %d times across a reconfigure, want 1 (cached)", n)
	}
}

// TestResolverTimeoutIsTheBudget: each query may take the whole timeout,
// not the resolver's shorter default.
func TestResolverTimeoutIsTheBudget(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	s := New().(*Stage)
	configured(t, s, srv, map[string]any{"zones": []any{"bl.test"}, "timeout": "7s"})
	if r := s.cur.Load().res.(*dnsutil.Resolver); r.Timeout != 7*time.Second {
		t.Errorf("resolver timeout %s, want 7s", r.Timeout)
	}
}

// TestMaskAnyBit: mask:6 counts an answer with either bit set.
func TestMaskAnyBit(t *testing.T) {
	srv := dnsutiltest.New(t, "5.113.0.203.bl.test. 300 IN A 127.0.0.2", "6.113.0.203.bl.test. 300 IN A 127.0.0.8")
	s := New().(*Stage)
	configured(t, s, srv, map[string]any{"zones": []any{map[string]any{"zone": "bl.test", "codes": []any{"mask:6"}}}})
	for ip, want := range map[string]sdk.Verdict{"203.0.113.5": sdk.VerdictFail, "203.0.113.6": sdk.VerdictNone} {
		if res, err := s.Check(context.Background(), req(sdk.PhaseHelo, ip, "", "")); err != nil || res.Verdict != want {
			t.Errorf("%s: %+v %v, want %s", ip, res, err, want)
		}
	}
}

// TestZoneNameRules: a zone may be given once as an address zone and once
// as an RHSBL; a name of maxZoneLen octets loads, one longer does not.
func TestZoneNameRules(t *testing.T) {
	if _, err := parseConfig(map[string]any{"zones": []any{"a.test", map[string]any{"zone": "a.test", "domain": true}}}); err != nil {
		t.Errorf("same zone as address and domain zone: %v", err)
	}
	name := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "."
	name += strings.Repeat("d", maxZoneLen-len(name))
	if _, err := parseConfig(map[string]any{"zones": []any{name}}); err != nil {
		t.Errorf("%d octets: %v", len(name), err)
	}
	if _, err := parseConfig(map[string]any{"zones": []any{name + "d"}}); err == nil {
		t.Errorf("%d octets accepted", len(name)+1)
	}
}

// TestMappedClient: an IPv4 client seen as IPv4-mapped IPv6 is asked as
// IPv4, also of a zone with ipv6: false.
func TestMappedClient(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	s := New().(*Stage)
	configured(t, s, srv, map[string]any{"zones": []any{map[string]any{"zone": "bl.test", "ipv6": false}}})
	if res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "::ffff:203.0.113.5", "", "")); err != nil || res.Verdict != sdk.VerdictFail {
		t.Errorf("mapped listed client: %+v %v, want fail", res, err)
	}
}

// TestSharedSpaceNotAsked: an RFC 6598 (CGNAT) client is not asked of the
// address zones, though the list has an entry for it.
func TestSharedSpaceNotAsked(t *testing.T) {
	srv := dnsutiltest.New(t, "1.0.64.100.bl.test. 300 IN A 127.0.0.2")
	s := New().(*Stage)
	configured(t, s, srv, map[string]any{"zones": []any{"bl.test"}})
	if res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "100.64.0.1", "", "")); err != nil || res.Verdict != sdk.VerdictNone {
		t.Errorf("shared-space client: %+v %v, want none", res, err)
	}
	if n := srv.Queries("1.0.64.100.bl.test.", "A"); n != 0 {
		t.Errorf("asked %d times", n)
	}
}

// TestRHSBLSubjects: a HELO that is a bare address is no domain to ask
// about, and a domain too long to make a query name with the zone is not
// asked (no error: the check answers as for the other zones).
func TestRHSBLSubjects(t *testing.T) {
	srv := dnsutiltest.New(t, zoneRecords...)
	s := New().(*Stage)
	configured(t, s, srv, map[string]any{"zones": []any{map[string]any{"zone": "dbl.test", "domain": true}}})
	if res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.9", "203.0.113.9", "")); err != nil || res.Verdict != sdk.VerdictNone {
		t.Errorf("address HELO: %+v %v", res, err)
	}
	if n := srv.Queries("203.0.113.9.dbl.test.", "A"); n != 0 {
		t.Errorf("address HELO asked %d times", n)
	}
	l := strings.Repeat("x", 60)
	long := l + "." + l + "." + l + "." + l + "." + strings.Repeat("y", 253-len("dbl.test")-4*61) // domain+zone = 253 octets
	if res, err := s.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.9", long, "")); err != nil || res.Verdict != sdk.VerdictNone {
		t.Errorf("overlong HELO domain (%d octets): %+v %v, want none and no error", len(long), res, err)
	}
}
