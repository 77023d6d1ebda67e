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
		if r := cfg.Routes[0]; !r.VerifyRecipients || r.VerifyTempfail != want {
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
