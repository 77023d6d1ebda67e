package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// CONTRACT.md "On the wire": DNS trouble is a 451, never a 5xx. A rule that
// refuses clients without a reverse name (`conn.hostname == ""`, Postfix's
// reject_unknown_client_hostname) must not refuse for good a client whose
// PTR lookup failed: it is told 4.4.3 and comes back, as Postfix says 450
// then (421 here, as a refusal in the greeting is, RFC 5321 3.8; 451 in
// later phases, core/pipeline's TestFailedHostnameLookupNeverRefusesForGood).
// A client the DNS says has no name gets the rule's own reply.
func TestHostnameRuleWhenTheLookupFails(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon; not in -short")
	}
	dns := dnstest.New(t, "20.0.0.127.in-addr.arpa. 60 IN PTR c20.client.test.", "c20.client.test. 60 IN A 127.0.0.20")
	dns.ServFail("21.0.0.127.in-addr.arpa.")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "portcullis.yaml")
	text := strings.ReplaceAll(`hostname: mx.example.test
listeners:
  - {name: mx, address: "127.0.0.1:0"}
relay: {domains: [example.test]}
routes:
  - {domains: ["*"], next_hop: "127.0.0.1:9"}
dns: {servers: ["%DNS%"], timeout: 2s}
queue: {dir: spool}
limits: {shutdown_grace: 2s}
rules:
  - name: no-rdns
    when: 'conn.hostname == ""'
    action: reject
    reply: '550 5.7.25 Client host rejected: cannot find your hostname, [{{conn.ip}}]'
`, "%DNS%", dns.Addr)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfg)
	for _, tc := range []struct {
		name  string
		n     int
		greet string
	}{
		{"named client", 20, "220 mx.example.test ESMTP"},
		{"DNS says no name", 22, "550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.22]"},
		{"PTR lookup SERVFAILs", 21, "421 4.4.3 Temporary failure in client hostname lookup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, greet := dialFrom(t, g.addr, tc.n); greet != tc.greet {
				t.Errorf("greeting %q, want %q", greet, tc.greet)
			}
		})
	}
}
