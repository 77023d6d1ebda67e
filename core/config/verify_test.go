package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyRecipientsMisuse: verify_recipients only where a route carries
// relay.domains mail to a server behind the gateway; each misuse is named
// at its key.
func TestVerifyRecipientsMisuse(t *testing.T) {
	const relay = "relay: {domains: [example.test, .sub.test]}\n"
	cases := []struct{ name, routes, want string }{
		{"skip_local", `routes: [{domains: ["*"], next_hop: "10.0.0.5:25", skip_local: true, verify_recipients: true}]`,
			"F:6:89: routes[0].verify_recipients: a skip_local route never carries mail for relay.domains, so it has no recipients to verify"},
		{"by MX", `routes: [{domains: [example.test], next_hop: mx, verify_recipients: true}]`,
			"F:6:69: routes[0].verify_recipients: needs next_hop host:port (the server behind the gateway that knows the mailboxes); by MX the probe would ask this gateway or another front door"},
		{"no local domain", `routes: [{domains: [other.test, "*.example.test"], next_hop: "10.0.0.5:25", verify_recipients: true}]`,
			"F:6:96: routes[0].verify_recipients: none of the route's domains is in relay.domains, and only their recipients are verified"},
		{"tempfail without verify", `routes: [{domains: [example.test], next_hop: "10.0.0.5:25", verify_tempfail: accept}]`,
			"F:6:78: routes[0].verify_tempfail: has no effect without verify_recipients: true"},
		{"tempfail value", `routes: [{domains: [example.test], next_hop: "10.0.0.5:25", verify_recipients: true, verify_tempfail: yes}]`,
			`F:6:103: routes[0].verify_tempfail: "yes" is not one of defer, accept`},
		{"not a bool", `routes: [{domains: [example.test], next_hop: "10.0.0.5:25", verify_recipients: maybe}]`,
			`F:6:80: routes[0].verify_recipients: want true or false, got "maybe"`},
		// First match wins: a route that comes after one taking all its
		// relay.domains mail is never picked for a recipient, so it would
		// verify nothing while check said ok.
		{"shadowed by *", `routes: [{domains: ["*"], next_hop: "10.0.0.5:25"}, {domains: [example.test], next_hop: "10.0.0.5:25", verify_recipients: true}]`,
			"F:6:123: routes[1].verify_recipients: routes[0] comes first for every relay.domains domain of this route (the first match wins), so it would verify no recipient; put this route before it"},
		{"shadowed by the same domain", `routes: [{domains: [example.test], next_hop: "10.0.0.6:25"}, {domains: [example.test, other.test], next_hop: "10.0.0.5:25", verify_recipients: true}]`,
			"F:6:144: routes[1].verify_recipients: routes[0] comes first for every relay.domains domain of this route (the first match wins), so it would verify no recipient; put this route before it"},
		{"shadowed by a suffix", `routes: [{domains: ["*.sub.test"], next_hop: "10.0.0.6:25"}, {domains: [a.sub.test, "*.b.sub.test"], next_hop: "10.0.0.5:25", verify_recipients: true}]`,
			"F:6:146: routes[1].verify_recipients: routes[0] comes first for every relay.domains domain of this route (the first match wins), so it would verify no recipient; put this route before it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := write(t, dir, "p.yaml", minimal+relay+c.routes+"\n")
			_, err := Load(path)
			if err == nil {
				t.Fatal("loaded without error")
			}
			got := strings.NewReplacer(path+":", "F:", dir+string(filepath.Separator), "D/").Replace(err.Error())
			if got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// TestVerifyRecipientsAccepted: the routes verification is for, and the
// defaults.
func TestVerifyRecipientsAccepted(t *testing.T) {
	for _, routes := range []string{
		`routes: [{domains: [example.test], next_hop: "10.0.0.5:25", verify_recipients: true}]`,
		`routes: [{domains: ["*"], next_hop: "mbox.internal:25", verify_recipients: true, verify_tempfail: accept}]`,
		`routes: [{domains: ["a.sub.test"], next_hop: "10.0.0.5:25", verify_recipients: true}]`,
		`routes: [{domains: ["*.sub.test"], next_hop: "10.0.0.5:25", verify_recipients: true}]`,
		`routes: [{domains: ["*.x.sub.test"], next_hop: "10.0.0.5:25", verify_recipients: true}]`,
		`routes: [{domains: ["*.test"], next_hop: "10.0.0.5:25", verify_recipients: true}]`,
		// An earlier route that takes part of the domains, or is passed
		// over for relay.domains (skip_local), leaves the rest verified.
		`routes: [{domains: [a.sub.test], next_hop: "10.0.0.6:25"}, {domains: ["*.sub.test"], next_hop: "10.0.0.5:25", verify_recipients: true}]`,
		`routes: [{domains: ["*"], next_hop: "smtp.isp.test:587", skip_local: true}, {domains: [example.test], next_hop: "10.0.0.5:25", verify_recipients: true}]`,
		`routes: [{domains: [other.test], next_hop: "10.0.0.6:25"}, {domains: [example.test], next_hop: "10.0.0.5:25", verify_recipients: true}]`,
	} {
		cfg, err := ParseIn([]byte(minimal+"relay: {domains: [example.test, .sub.test]}\n"+routes+"\n"), "f.yaml", t.TempDir())
		if err != nil {
			t.Errorf("%s: %v", routes, err)
			continue
		}
		want := DefaultVerifyTempfail
		if strings.Contains(routes, "accept") {
			want = "accept"
		}
		if r := cfg.Routes[len(cfg.Routes)-1]; !r.VerifyRecipients || r.VerifyTempfail != want {
			t.Errorf("%s: %+v", routes, r)
		}
	}
}

func TestOverlapsLocal(t *testing.T) {
	local := []string{"example.test", ".sub.test", "*.star.test"}
	for pattern, want := range map[string]bool{
		"*": true, "example.test": true, "x.example.test": false,
		"*.example.test": false, "*.test": true, "sub.test": false, "a.sub.test": true,
		"*.sub.test": true, "*.a.sub.test": true, "star.test": false, "b.star.test": true,
		"*.b.star.test": true, "ab.test": false, "*.ub.test": false, "*.b.test": false,
	} {
		if got := overlapsLocal(pattern, local); got != want {
			t.Errorf("%s: %v, want %v", pattern, got, want)
		}
	}
	if overlapsLocal("*", nil) {
		t.Error(`"*" with no relay.domains`)
	}
}

func TestCovers(t *testing.T) {
	for _, c := range []struct {
		q, p string
		want bool
	}{
		{"*", "example.test", true}, {"*", "*.test", true}, {"example.test", "example.test", true},
		{"example.test", "a.example.test", false}, {"example.test", "*.example.test", false},
		{"*.example.test", "a.example.test", true}, {"*.example.test", "example.test", false},
		{"*.example.test", "*.a.example.test", true}, {"*.example.test", "*.example.test", true},
		{"*.example.test", "*.test", false}, {"*.example.test", "*", false}, {"*.ample.test", "example.test", false},
	} {
		if got := covers(c.q, c.p); got != c.want {
			t.Errorf("covers(%q, %q) = %v, want %v", c.q, c.p, got, c.want)
		}
	}
}
