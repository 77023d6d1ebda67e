package rdns

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

func checkIP(t *testing.T, s *Stage, ip string) *sdk.Result {
	t.Helper()
	res, err := s.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseHelo, Conn: sdk.Conn{IP: ip}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestMismatchDynamicAndPTRList: with no confirmed name the generic-name
// test reads the first PTR name; attrs.ptr lists every PTR name; the
// confirmed name is reported in lower case.
func TestMismatchDynamicAndPTRList(t *testing.T) {
	srv := dnsutiltest.New(t,
		"30.113.0.203.in-addr.arpa. 300 IN PTR dhcp-203-0-113-30.pool.isp.example.",
		"30.113.0.203.in-addr.arpa. 300 IN PTR other.example.",
		"31.113.0.203.in-addr.arpa. 300 IN PTR MX.Example.",
		"MX.Example. 300 IN A 203.0.113.31",
	)
	s := newStage(t, srv)
	res := checkIP(t, s, "203.0.113.30")
	if res.Verdict != sdk.VerdictFail || !slices.Equal(res.Tags, []string{"mismatch", "dynamic"}) {
		t.Errorf("generic PTR, unconfirmed: %s %q, want fail [mismatch dynamic]", res.Verdict, res.Tags)
	}
	if got := strings.Split(res.Attrs["ptr"], ","); !slices.Equal(got, []string{"dhcp-203-0-113-30.pool.isp.example", "other.example"}) {
		t.Errorf("attrs.ptr %q, want both names", res.Attrs["ptr"])
	}
	if res := checkIP(t, s, "203.0.113.31"); res.Verdict != sdk.VerdictPass || res.Attrs["hostname"] != "mx.example" {
		t.Errorf("upper-case PTR name: %s %v, want hostname mx.example", res.Verdict, res.Attrs)
	}
}

// TestMaxNamesDefault: by default the first 5 PTR names are tried, no more.
func TestMaxNamesDefault(t *testing.T) {
	var recs []string
	for i := 1; i <= 7; i++ {
		recs = append(recs, fmt.Sprintf("32.113.0.203.in-addr.arpa. 300 IN PTR n%d.example.", i),
			fmt.Sprintf("n%d.example. 300 IN A 192.0.2.%d", i, i))
	}
	srv := dnsutiltest.New(t, recs...)
	s := New().(*Stage)
	if err := s.Configure(context.Background(), sdk.Env{DNSServers: []string{srv.Addr}}, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if res := checkIP(t, s, "203.0.113.32"); res.Attrs["result"] != "mismatch" {
		t.Fatalf("got %s %v", res.Verdict, res.Attrs)
	}
	asked := 0
	for i := 1; i <= 7; i++ {
		asked += srv.Queries(fmt.Sprintf("n%d.example.", i), "A")
	}
	if asked != 5 {
		t.Errorf("%d names asked, want 5", asked)
	}
}

// TestConfigRules: the resolver's per-query timeout is the stage's
// timeout; an empty dynamic pattern is refused; patterns are
// case-insensitive.
func TestConfigRules(t *testing.T) {
	st, err := load(sdk.Env{DNSServers: []string{"127.0.0.1:1"}}, map[string]any{"timeout": "7s", "dynamic_patterns": []any{`^CustomHost\d`}})
	if err != nil {
		t.Fatal(err)
	}
	if r := st.res.(*dnsutil.Resolver); r.Timeout != 7*time.Second {
		t.Errorf("resolver timeout %s, want 7s", r.Timeout)
	}
	if !st.isDynamic("customhost1.example.net", netip.MustParseAddr("198.51.100.9")) {
		t.Error("upper-case pattern did not match a lower-case name")
	}
	if _, err := load(sdk.Env{DNSServers: []string{"127.0.0.1:1"}}, map[string]any{"dynamic_patterns": []any{""}}); err == nil {
		t.Error("empty pattern accepted")
	}
}

// TestDynamicAddressForms: the address spelled in the host labels (not
// the registered domain): three octets of four suffice, two do not, a
// number counts for one octet only; zero-padded runs forward or reversed;
// the 8 hex digits (7 are not the address).
func TestDynamicAddressForms(t *testing.T) {
	st := &state{}
	for _, tt := range []struct {
		name, ip string
		want     bool
	}{
		{"host-113-0-5.isp.example", "203.0.113.5", true},
		{"host5-113.corp.example", "203.0.113.5", false},
		{"mail51.corp.example", "198.51.51.51", false},
		{"005113000203.isp.example", "203.0.113.5", true},
		{"0a010203.isp.example", "10.1.2.3", true},
		{"a010203.isp.example", "10.1.2.3", false},
		{"mx.dsl-provider.example", "198.51.100.9", false},
	} {
		if got := st.isDynamic(tt.name, netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("isDynamic(%s, %s) = %v, want %v", tt.name, tt.ip, got, tt.want)
		}
	}
}
