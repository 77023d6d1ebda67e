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

// TestFailedHostnameLookupThroughAStage: a stage whose when: reads
// conn.hostname ran (or was skipped) because the lookup failed, so a rule
// that refuses on its result rests on the failed lookup as much as one
// that reads conn.hostname itself: 451 4.4.3, never its 5xx. A stage whose
// when: reads conn.hostname_error has decided for itself, and a rule on a
// stage that does not care about the name keeps its reply. A rule that may
// read any stage's result (results[k], values(results)) may read that one.
func TestFailedHostnameLookupThroughAStage(t *testing.T) {
	connect := []sdk.Phase{sdk.PhaseConnect}
	e := newEngine(t, `
stages:
  - {name: always, plugin: x}
  - {name: unnamed, plugin: x, when: 'conn.hostname == ""'}
  - {name: told, plugin: x, when: 'conn.hostname == "" && conn.hostname_error != ""'}
  - {name: after, plugin: x, when: 'results.unnamed.verdict == "fail"'}
rules:
  - {name: on-always, when: 'conn.helo == "always" && results.always.verdict == "fail"', phase: helo, action: reject}
  - {name: on-unnamed, when: 'conn.helo == "unnamed" && results.unnamed.verdict == "fail"', phase: helo, action: reject, reply: '554 5.7.1 strict list'}
  - {name: on-told, when: 'conn.helo == "told" && results.told.verdict == "fail"', phase: helo, action: reject, reply: '554 5.7.1 told'}
  - {name: on-after, when: 'conn.helo == "after" && results.after.verdict == "fail"', phase: helo, action: reject}
  - {name: by-name, when: 'conn.helo == "by-name" && any(["unnamed"], results[#].verdict == "fail")', action: reject}
  - {name: all, when: 'conn.helo == "all" && any(values(results), .verdict == "fail")', phase: helo, action: reject}
`, map[string]StageClient{
		"always":  &fake{phases: connect, check: verdict(sdk.VerdictFail)},
		"unnamed": &fake{phases: connect, check: verdict(sdk.VerdictFail)},
		"told":    &fake{phases: connect, check: verdict(sdk.VerdictFail)},
		"after":   &fake{phases: []sdk.Phase{sdk.PhaseHelo}, check: verdict(sdk.VerdictFail)},
	})
	const lookup = "PTR 192.0.2.7: SERVFAIL"
	for _, tc := range []struct {
		helo  string
		phase sdk.Phase
		want  string
	}{
		{"always", sdk.PhaseHelo, "550 5.7.1 Message rejected by policy"},
		{"unnamed", sdk.PhaseHelo, "451 4.4.3 Temporary failure in client hostname lookup"},
		{"told", sdk.PhaseHelo, "554 5.7.1 told"},
		{"after", sdk.PhaseHelo, "451 4.4.3 Temporary failure in client hostname lookup"},
		{"by-name", sdk.PhaseData, "451 4.4.3 Temporary failure in client hostname lookup"},
		{"all", sdk.PhaseHelo, "451 4.4.3 Temporary failure in client hostname lookup"},
	} {
		t.Run(tc.helo, func(t *testing.T) {
			results := map[string]*sdk.Result{}
			for _, ph := range sdk.Phases {
				req := request(ph)
				req.Conn.HELO, req.Conn.HostnameError = tc.helo, lookup
				d, err := e.Run(context.Background(), req, results)
				if err != nil {
					t.Fatal(err)
				}
				if ph != tc.phase {
					if d.Action != Continue {
						t.Fatalf("%s: %s %s", ph, d.Action, replyString(d.Reply))
					}
					continue
				}
				if got := replyString(d.Reply); got != tc.want {
					t.Errorf("reply %q, want %q (action %s, reason %q)", got, tc.want, d.Action, d.Reason)
				}
				return
			}
		})
	}
}
