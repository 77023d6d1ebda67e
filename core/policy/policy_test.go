package policy

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/smtperr"
)

// R is our domain (relay.domains), V a victim elsewhere.
const (
	R = "example.test"
	V = "victim.example"
)

func testPolicy(t testing.TB, recipientsFile string) *Policy {
	t.Helper()
	cfg := testPolicyConfig(t)
	cfg.Relay.Recipients = recipientsFile
	p, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testPolicyConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.Relay.Domains = []string{R, ".sub.example.test"}
	for _, n := range []string{"192.0.2.0/24", "2001:db8::/32"} {
		p, err := config.ParsePrefix(n)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Relay.Networks = append(cfg.Relay.Networks, config.Prefixes{Prefix: p, Text: n})
	}
	return &cfg
}

var (
	untrusted = Client{IP: netip.MustParseAddr("198.51.100.7")}
	trusted   = Client{IP: netip.MustParseAddr("192.0.2.10")}
	trusted6  = Client{IP: netip.MustParseAddr("::ffff:192.0.2.10")}
	authed    = Client{IP: netip.MustParseAddr("198.51.100.7"), Authenticated: true, User: "alice"}
)

// reply returns "code enhanced" of err ("ok" for nil), failing on a
// non-smtperr error: plain Go errors must never reach a client.
func reply(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return "ok"
	}
	var se *smtperr.Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v is %T, not *smtperr.Error", err, err)
	}
	return se.Reply()
}

// TestOpenRelay walks the classic open-relay tricks, as go-smtp hands them
// to Rcpt (quotes removed, source routes dropped), from every kind of
// sender and client. Only the plain local recipient and, for trusted and
// authenticated clients, real relaying may pass.
func TestOpenRelay(t *testing.T) {
	p := testPolicy(t, "")
	// A refusal names the address in its envelope form (WirePath).
	relayDenied := func(rcpt string) string { return "554 5.7.1 <" + WirePath(rcpt) + ">: Relay access denied" }
	routing := func(rcpt string) string {
		return "553 5.1.3 <" + WirePath(rcpt) + ">: Recipient address rejected: routing characters in local part"
	}
	syntax := func(rcpt string) string {
		return "553 5.1.3 <" + WirePath(rcpt) + ">: Recipient address rejected: bad address syntax"
	}
	cases := []struct {
		name, rcpt       string
		untrusted, other string // other: trusted and authenticated clients
	}{
		{"plain local", "u@" + R, "ok", "ok"},
		{"local upper case", "U@EXAMPLE.TEST", "ok", "ok"},
		{"local subdomain entry", "u@a.sub.example.test", "ok", "ok"},
		{"suffix entry is not the apex", "u@sub.example.test", relayDenied("u@sub.example.test"), "ok"},
		{"plain remote", "u@" + V, relayDenied("u@" + V), "ok"},
		{"remote upper case", "u@VICTIM.EXAMPLE", relayDenied("u@VICTIM.EXAMPLE"), "ok"},
		{"remote lookalike suffix", "u@notexample.test", relayDenied("u@notexample.test"), "ok"},
		{"source route raw", "@" + R + ":u@" + V, relayDenied("@" + R + ":u@" + V), "ok"},
		{"percent hack", "u%" + V + "@" + R, routing("u%" + V + "@" + R), routing("u%" + V + "@" + R)},
		{"percent hack upper", "U%VICTIM.EXAMPLE@EXAMPLE.TEST", routing("U%VICTIM.EXAMPLE@EXAMPLE.TEST"), routing("U%VICTIM.EXAMPLE@EXAMPLE.TEST")},
		{"percent hack to literal", "u%" + V + "@[192.0.2.1]", relayDenied("u%" + V + "@[192.0.2.1]"), "ok"},
		{"quoted percent, no domain", `"u%` + V + `"`, syntax(`"u%` + V + `"`), syntax(`"u%` + V + `"`)},
		{"bang path", V + "!u", syntax(V + "!u"), syntax(V + "!u")},
		{"bang path at local", V + "!u@" + R, routing(V + "!u@" + R), routing(V + "!u@" + R)},
		{"quoted at (unquoted by go-smtp)", "u@" + V + "@" + R, routing("u@" + V + "@" + R), routing("u@" + V + "@" + R)},
		{"quoted at, raw quotes", `"u@` + V + `"`, syntax(`"u@` + V + `"`), syntax(`"u@` + V + `"`)},
		{"second at to remote", "u@" + R + "@" + V, relayDenied("u@" + R + "@" + V), "ok"},
		{"trailing dot remote", "u@" + V + ".", syntax("u@" + V + "."), syntax("u@" + V + ".")},
		{"trailing dot local", "u@" + R + ".", syntax("u@" + R + "."), syntax("u@" + R + ".")},
		{"literal", "u@[192.0.2.1]", relayDenied("u@[192.0.2.1]"), "ok"},
		{"literal v6", "u@[IPv6:2001:db8::1]", relayDenied("u@[IPv6:2001:db8::1]"), "ok"},
		{"null recipient", "", syntax(""), syntax("")},
	}
	senders := []string{"", "f@" + V, "f@" + R, "f@[192.0.2.1]", "F@EXAMPLE.TEST"}
	clients := []struct {
		name string
		c    Client
	}{{"untrusted", untrusted}, {"trusted", trusted}, {"trusted-v4mapped", trusted6}, {"authenticated", authed}}
	for _, tc := range cases {
		for _, from := range senders {
			for _, cl := range clients {
				t.Run(tc.name+"/from<"+from+">/"+cl.name, func(t *testing.T) {
					if err := p.CheckMail(cl.c, from); err != nil {
						t.Fatalf("CheckMail: %v", err)
					}
					want := tc.other
					if cl.name == "untrusted" {
						want = tc.untrusted
					}
					if got := reply(t, p.CheckRcpt(cl.c, from, tc.rcpt)); got != want {
						t.Errorf("got %q, want %q", got, want)
					}
				})
			}
		}
	}
}

func TestCheckMail(t *testing.T) {
	p := testPolicy(t, "")
	for from, want := range map[string]string{
		"":              "ok",
		"f@" + V:        "ok",
		"f@[192.0.2.1]": "ok",
		"f@" + V + ".":  "553 5.1.7 <f@victim.example.>: Sender address rejected: bad address syntax",
		"f":             "553 5.1.7 <f>: Sender address rejected: bad address syntax",
	} {
		if got := reply(t, p.CheckMail(untrusted, from)); got != want {
			t.Errorf("CheckMail(%q) = %q, want %q", from, got, want)
		}
	}
}

func TestTrustedAndIsLocal(t *testing.T) {
	p := testPolicy(t, "")
	for ip, want := range map[string]bool{
		"192.0.2.1": true, "192.0.3.1": false, "::ffff:192.0.2.1": true, "2001:db8::5": true, "2001:db9::5": false,
		"127.0.0.1": false, // loopback is not trusted unless listed: no hidden trust
	} {
		if got := p.Trusted(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Trusted(%s) = %v, want %v", ip, got, want)
		}
	}
	for d, want := range map[string]bool{
		"example.test": true, "EXAMPLE.TEST": true, "x.example.test": false, "sub.example.test": false,
		"a.sub.example.test": true, "a.b.SUB.example.test": true, "example.test.": false, "xsub.example.test": false,
	} {
		if got := p.IsLocal(d); got != want {
			t.Errorf("IsLocal(%s) = %v, want %v", d, got, want)
		}
	}
	if !strings.Contains(reply(t, p.CheckRcpt(untrusted, "", "u@"+V)), "Relay access denied") {
		t.Error("null sender relayed for an untrusted client")
	}
}

// TestQuotedRouteInLocalPart: go-smtp drops a real source route and
// unquotes, so `"@victim.example:u"@example.test` reaches CheckRcpt as
// "@victim.example:u@example.test". Judging it as u@example.test (route
// dropped) accepted an address that the queue then hands downstream as a
// source route, and that passes the recipients check on another name.
func TestQuotedRouteInLocalPart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.txt")
	if err := os.WriteFile(path, []byte("u@example.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Policy{testPolicy(t, ""), testPolicy(t, path)} {
		for _, rcpt := range []string{"@victim.example:u@example.test", "@a.test,@b.test:u@example.test"} {
			// Named as the queue would hand it on: quoted (WirePath).
			want := "553 5.1.3 <\"" + strings.TrimSuffix(rcpt, "@example.test") + "\"@example.test>: Recipient address rejected: routing characters in local part"
			for _, c := range []Client{untrusted, trusted, authed} {
				if got := reply(t, p.CheckRcpt(c, "", rcpt)); got != want {
					t.Errorf("%s from %v: got %q, want %q", rcpt, c.IP, got, want)
				}
			}
		}
	}
}

// TestTrustedZonedAddress: a link-local client address carries its zone
// (fe80::1%eth0, as net.Conn reports it); netip.Prefix.Contains never
// matches a zoned address, so relay.networks: ["fe80::/10"] did not work.
func TestTrustedZonedAddress(t *testing.T) {
	cfg := testPolicyConfig(t)
	cfg.Relay.Networks = []config.Prefixes{{Prefix: netip.MustParsePrefix("fe80::/10"), Text: "fe80::/10"}}
	p, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := Client{IP: netip.MustParseAddr("fe80::1%eth0")}
	if !p.Trusted(c.IP) {
		t.Errorf("%s not in fe80::/10", c.IP)
	}
	if got := reply(t, p.CheckRcpt(c, "", "u@victim.example")); got != "ok" {
		t.Errorf("zoned trusted client: %q", got)
	}
	if p.Trusted(netip.MustParseAddr("fec0::1%eth0")) {
		t.Error("fec0::1 (zoned) trusted")
	}
}

// TestWirePath: the queue keeps addresses as go-smtp unquoted them; on
// the wire a local part that is not a Dot-string must be quoted again.
func TestWirePath(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"bob@example.test":  "bob@example.test",
		"john smith@x.test": `"john smith"@x.test`,
		`a"b\c@x.test`:      `"a\"b\\c"@x.test`,
		"u@V@r.test":        `"u@V"@r.test`,
		".lead@x.test":      `".lead"@x.test`,
		"a..b@x.test":       `"a..b"@x.test`,
		"j\u00f6rg@x.test":  "j\u00f6rg@x.test",
		"team#1+tag@x.test": "team#1+tag@x.test",
		"postmaster":        "postmaster",
	} {
		if got := WirePath(in); got != want {
			t.Errorf("WirePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPostmasterAtHostname: where relay.domains has no exact entry (only
// wildcards, or none: an outbound-only gateway), "RCPT TO:<Postmaster>"
// goes to postmaster@ the hostname, and RFC 5321 4.5.1 says it MUST be
// accepted, from anyone. No other address at the hostname is.
func TestPostmasterAtHostname(t *testing.T) {
	for _, domains := range [][]string{{"*.example.test"}, nil} {
		cfg := testPolicyConfig(t)
		cfg.Relay.Domains = domains
		cfg.Hostname = "gw.other.test"
		p, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		pm := Postmaster(cfg)
		if pm != "postmaster@gw.other.test" {
			t.Fatalf("relay.domains %v: postmaster is %s", domains, pm)
		}
		for rcpt, want := range map[string]string{
			pm:                         "ok",
			"PostMaster@GW.other.test": "ok",
			"abuse@gw.other.test":      "554 5.7.1",
			"postmaster@" + V:          "554 5.7.1",
			"postmaster@[192.0.2.1]":   "554 5.7.1",
		} {
			if got := reply(t, p.CheckRcpt(untrusted, "a@"+V, rcpt)); !strings.HasPrefix(got, want) {
				t.Errorf("relay.domains %v, untrusted RCPT %s: %s, want %s", domains, rcpt, got, want)
			}
		}
	}
}

// TestRefusalEcho: a refusal names the client's address, but its control
// bytes never reach the client (RFC 5321 4.2: reply text is printable),
// and a long address is shortened in the echo, so that the reply keeps
// its code and its meaning within a 512-octet line (RFC 5321 4.5.3.1.5).
func TestRefusalEcho(t *testing.T) {
	p := testPolicy(t, "")
	long := strings.Repeat("a", 2000) + "@-bad.test"
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"escape in domain", p.CheckRcpt(untrusted, "", "x@\x1b[2J.test"),
			"553 5.1.3 <x@?[2J.test>: Recipient address rejected: bad address syntax"},
		{"bell after domain", p.CheckRcpt(untrusted, "", "bob@example.test\x07"),
			"553 5.1.3 <bob@example.test?>: Recipient address rejected: bad address syntax"},
		{"invalid utf-8", p.CheckRcpt(untrusted, "", "bob\xff@victim.example"),
			"553 5.1.3 <bob?@victim.example>: Recipient address rejected: bad address syntax"},
		{"long recipient", p.CheckRcpt(untrusted, "", long),
			"553 5.1.3 <" + strings.Repeat("a", 256) + "...>: Recipient address rejected: bad address syntax"},
		{"long sender", p.CheckMail(untrusted, long),
			"553 5.1.7 <" + strings.Repeat("a", 256) + "...>: Sender address rejected: bad address syntax"},
		{"escape in sender", p.CheckMail(untrusted, "a@b\x1b]0;x\x07.test"),
			"553 5.1.7 <a@b?]0;x?.test>: Sender address rejected: bad address syntax"},
		{"utf-8 kept", p.CheckRcpt(untrusted, "", "jürgen@victim.example"),
			"554 5.7.1 <jürgen@victim.example>: Relay access denied"},
		{"quoted local part", p.CheckRcpt(untrusted, "", "john smith@victim.example"),
			"554 5.7.1 <\"john smith\"@victim.example>: Relay access denied"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := reply(t, c.err)
			if got != c.want {
				t.Errorf("reply\n got %q\nwant %q", got, c.want)
			}
			if len(got)+len("\r\n") > 512 {
				t.Errorf("reply is %d octets with CRLF, over 512", len(got)+2)
			}
		})
	}
}

// TestDomainsWildcardBoundary: "*.example.test" means the subdomains of
// example.test, cut at a label boundary. Keeping the suffix without its
// leading dot ("example.test") made evilexample.test a local domain, so
// anyone could relay to a domain an attacker registers; example.test
// itself is not covered either (only ".x"/"*.x" entries' subdomains).
func TestDomainsWildcardBoundary(t *testing.T) {
	for _, entry := range []string{"*.example.test", ".example.test", "*.EXAMPLE.test"} {
		ds := NewDomains([]string{entry})
		for d, want := range map[string]bool{
			"a.example.test": true, "a.b.example.test": true, "A.Example.TEST": true,
			"example.test": false, "evilexample.test": false, "a.evilexample.test": false,
			"xexample.test": false, "example.test.evil": false,
		} {
			if got := ds.Has(d); got != want {
				t.Errorf("NewDomains(%q).Has(%q) = %v, want %v", entry, d, got, want)
			}
		}
	}
}
