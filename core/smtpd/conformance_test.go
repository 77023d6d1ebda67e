package smtpd

import "testing"

// TestAuthWithoutMechanism: "AUTH" with no mechanism is a syntax error in
// its parameters (RFC 5321 4.2.3: 501; RFC 4954 4 names the mechanism as
// required), not go-smtp's "502 5.5.4 Missing parameter", which says the
// command is not implemented: a client would give up AUTH on this server.
func TestAuthWithoutMechanism(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	if got := r.cmd("AUTH", "5"); got != "501 5.5.4 Missing parameter" {
		t.Fatalf("AUTH without mechanism: %q, want 501 5.5.4 Missing parameter", got)
	}
	r.cmd("AUTH PLAIN "+b64("\x00alice\x00secret"), "235 2.7.0")
}
