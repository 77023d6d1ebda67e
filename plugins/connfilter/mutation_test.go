package connfilter

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestHostnameUnknownOnlyWithHostPatterns: attrs.hostname is "unknown" when
// some list (deny or allow) has host patterns and the client has no name,
// and absent when no list has any.
func TestHostnameUnknownOnlyWithHostPatterns(t *testing.T) {
	ipOnly := newStage(t, t.TempDir(), map[string]any{"deny": []any{"192.0.2.1"}})
	if res := check(t, ipOnly, "192.0.2.9", ""); res.Attrs["hostname"] != "" {
		t.Errorf("no host patterns: attrs %v, want no hostname", res.Attrs)
	}
	allowHosts := newStage(t, t.TempDir(), map[string]any{"allow": []any{"mail.partner.test"}})
	if res := check(t, allowHosts, "192.0.2.9", ""); res.Attrs["hostname"] != "unknown" {
		t.Errorf("allow host pattern, no name: attrs %v, want hostname=unknown", res.Attrs)
	}
}

// TestMappedClientAddress: an IPv4 client seen as an IPv4-mapped IPv6
// address (a dual-stack listener) matches the IPv4 entries.
func TestMappedClientAddress(t *testing.T) {
	s := newStage(t, t.TempDir(), map[string]any{"deny": []any{"203.0.113.0/24"}})
	if res := check(t, s, "::ffff:203.0.113.7", ""); res.Verdict != sdk.VerdictFail || res.Attrs["entry"] != "203.0.113.0/24" {
		t.Errorf("mapped client: %s %v, want fail by 203.0.113.0/24", res.Verdict, res.Attrs)
	}
}

// TestMostSpecificPrefixReported: of nested prefixes in one list, the
// longest one covering the client is the entry reported.
func TestMostSpecificPrefixReported(t *testing.T) {
	s := newStage(t, t.TempDir(), map[string]any{"deny": []any{"10.0.0.0/8", "10.1.2.3", "10.1.0.0/16", "2001:db8::/32", "2001:db8:1::/48"}})
	for ip, want := range map[string]string{"10.1.2.3": "10.1.2.3", "10.1.9.9": "10.1.0.0/16", "10.2.0.1": "10.0.0.0/8",
		"2001:db8:1::5": "2001:db8:1::/48", "2001:db8:2::5": "2001:db8::/32"} {
		if res := check(t, s, ip, ""); res.Attrs["entry"] != want {
			t.Errorf("%s: entry %q, want %q", ip, res.Attrs["entry"], want)
		}
	}
}

// TestGlobAfterExactNotReported: a glob written after an exact or "*."
// pattern that also matches does not take its place.
func TestGlobAfterExactNotReported(t *testing.T) {
	l := newList("deny")
	for _, e := range []string{"a.b.example", "*.c.example", "?.b.example", "x.c.exampl?"} {
		if err := l.add(e); err != nil {
			t.Fatal(err)
		}
	}
	for host, want := range map[string]string{"a.b.example": "a.b.example", "x.c.example": "*.c.example", "z.b.example": "?.b.example"} {
		if _, got := l.match(netip.MustParseAddr("192.0.2.1"), host, ""); got != want {
			t.Errorf("%s: matched %q, want %q", host, got, want)
		}
	}
}

// TestHostPatternLengthBound: a pattern of 253 octets loads, one of 254
// (no host name is that long) is refused.
func TestHostPatternLengthBound(t *testing.T) {
	l63 := strings.Repeat("a", 63)
	ok := l63 + "." + l63 + "." + l63 + "." + strings.Repeat("b", 61)
	long := l63 + "." + l63 + "." + l63 + "." + strings.Repeat("b", 62)
	if err := newList("deny").add("host:" + ok); err != nil {
		t.Errorf("253 octets: %v", err)
	}
	if err := newList("deny").add("host:" + long); err == nil || !strings.Contains(err.Error(), "longer than 253 octets") {
		t.Errorf("254 octets: %v, want refused", err)
	}
}

// TestFiltersFileReloadOnChange: a `filters` file is watched as the list
// files are.
func TestFiltersFileReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "filter.txt", "REJECT/IP/192.0.2.1\n")
	now := time.Unix(1_800_000_000, 0)
	s := &Stage{now: func() time.Time { return now }}
	if err := s.Configure(context.Background(), sdk.Env{ConfigDir: dir}, map[string]any{
		"filters": "filter.txt", "reload_interval": "10s"}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "filter.txt", "REJECT/IP/192.0.2.2\n")
	mt := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
	now = now.Add(11 * time.Second)
	if res := check(t, s, "192.0.2.2", ""); res.Verdict != sdk.VerdictFail {
		t.Fatalf("changed filters file not re-read: %s %v", res.Verdict, res.Attrs)
	}
}
