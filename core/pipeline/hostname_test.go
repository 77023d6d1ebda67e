package pipeline

import (
	"context"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestFailedHostnameLookupNeverRefusesForGood: CONTRACT.md "On the wire":
// DNS trouble is a 451, never a 5xx. A rule on conn.hostname that matched
// only because the lookup failed (conn.hostname is then "") answers 451
// 4.4.3, as Postfix's reject_unknown_client_hostname answers 450 for a
// temporary failure. A rule that reads conn.hostname_error has decided
// for itself, and a tempfail or a lookup that answered is left alone.
func TestFailedHostnameLookupNeverRefusesForGood(t *testing.T) {
	e := newEngine(t, `
rules:
  - {name: own, when: 'conn.helo == "own" && conn.hostname == "" && conn.hostname_error != ""', action: reject, reply: '554 5.7.1 chosen'}
  - {name: whole, when: 'conn.helo == "whole" && conn["hostname"] == ""', action: reject}
  - {name: soft, when: 'conn.helo == "soft" && conn.hostname == ""', action: tempfail}
  - {name: ip, when: 'conn.helo == "ip"', action: reject, reply: '554 5.7.1 no {{conn.hostname}}'}
  - {name: nordns, when: 'conn.hostname == ""', phase: helo, action: reject, reply: '550 5.7.25 no rDNS for {{conn.ip}}'}
`, nil)
	const lookup = "PTR 192.0.2.7: i/o timeout"
	for _, tc := range []struct {
		name, helo, hostErr, want string
	}{
		{"no name, DNS answered", "client.example", "", "550 5.7.25 no rDNS for 192.0.2.7"},
		{"DNS failed", "client.example", lookup, "451 4.4.3 Temporary failure in client hostname lookup"},
		{"conn as a whole", "whole", lookup, "451 4.4.3 Temporary failure in client hostname lookup"},
		{"rule reads hostname_error", "own", lookup, "554 5.7.1 chosen"},
		{"tempfail kept", "soft", lookup, "451 4.7.1 Try again later"},
		{"hostname only in the reply", "ip", lookup, "554 5.7.1 no "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request(sdk.PhaseHelo)
			req.Conn.HELO, req.Conn.HostnameError = tc.helo, tc.hostErr
			d, err := e.Run(context.Background(), req, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := replyString(d.Reply); got != tc.want {
				t.Errorf("reply %q, want %q (action %s, reason %q)", got, tc.want, d.Action, d.Reason)
			}
			if tc.want[0] == '4' && d.Action != Tempfail {
				t.Errorf("action %s, want tempfail", d.Action)
			}
		})
	}
}
