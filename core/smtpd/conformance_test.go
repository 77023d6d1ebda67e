package smtpd

import (
	"strings"
	"testing"
)

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

// TestParamsAfterHELO: MAIL and RCPT parameters are taken after HELO as
// after EHLO, as Postfix takes them (RFC 5321 leaves it to the server): a
// legacy client that greets with HELO and sends SIZE= or NOTIFY= keeps
// working, and what it asked for is kept in the envelope. The duplicate
// and unknown-keyword checks apply the same.
func TestParamsAfterHELO(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.expect("220")
	r.cmd("HELO c.example.org", "250 mx.example.test Hello")
	r.cmd("MAIL FROM:<a@example.org> SIZE=100 SIZE=100", "501 5.5.4 Duplicate parameter")
	r.cmd("MAIL FROM:<a@example.org> FOO=1", "555 5.5.4 Unknown MAIL FROM argument")
	r.cmd("MAIL FROM:<a@example.org> SIZE=100 RET=HDRS ENVID=e1", "250 2.1.0")
	r.cmd("RCPT TO:<bob@example.test> NOTIFY=NEVER ORCPT=rfc822;bob@example.test", "250 2.1.5")
	r.cmd("DATA", "354")
	r.send(message("helo") + ".\r\n")
	id := strings.Fields(r.expect("250 2.0.0"))[2]
	env, err := ts.q.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Rcpts) != 1 || len(env.Rcpts[0].Notify) != 1 || env.Rcpts[0].ORCPT == "" || env.DSNEnvID != "e1" {
		t.Fatalf("envelope after HELO: %+v, rcpt %+v", env, env.Rcpts[0])
	}
}

// TestParamOnceEach: a MAIL or RCPT parameter given twice is a syntax
// error (501 5.5.4), as Postfix refuses a second RET, ENVID, NOTIFY or
// ORCPT: go-smtp kept the last of them silently, and which of two bad
// parameters it answered for changed from one try to the next (it reads
// them from a map). SMTPUTF8 takes no value (RFC 6531 3.4).
func TestParamOnceEach(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	const dup = "501 5.5.4 Duplicate parameter"
	for _, line := range []string{
		"MAIL FROM:<a@example.org> SIZE=100 SIZE=2",
		"MAIL FROM:<a@example.org> BODY=7BIT body=8BITMIME",
		"MAIL FROM:<a@example.org> RET=HDRS RET=FULL",
		"MAIL FROM:<a@example.org> ENVID=a ENVID=b",
		"MAIL FROM:<a@example.org> SMTPUTF8 SMTPUTF8",
	} {
		if got := r.cmd(line, "5"); got != dup {
			t.Errorf("%s: %q, want %q", line, got, dup)
		}
	}
	if got, want := r.cmd("MAIL FROM:<a@example.org> SMTPUTF8=yes", "5"), "501 5.5.4 SMTPUTF8 takes no value"; got != want {
		t.Errorf("SMTPUTF8=yes: %q, want %q", got, want)
	}
	// The reply to two different bad parameters is always the same one
	// (20 errors end the session: max_bad_commands).
	for range 4 {
		r.cmd("MAIL FROM:<a@example.org> FOO=1 SIZE=x", "555 5.5.4 Unknown MAIL FROM argument")
	}
	r.cmd("MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=e SMTPUTF8", "250")
	for _, line := range []string{
		"RCPT TO:<bob@example.test> NOTIFY=SUCCESS NOTIFY=FAILURE",
		"RCPT TO:<bob@example.test> ORCPT=rfc822;a@example.test orcpt=rfc822;b@example.test",
	} {
		if got := r.cmd(line, "5"); got != dup {
			t.Errorf("%s: %q, want %q", line, got, dup)
		}
	}
	for range 4 {
		r.cmd("RCPT TO:<bob@example.test> XYZ=1 NOTIFY=BOGUS", "555 5.5.4 Unknown RCPT TO argument")
	}
	r.cmd("RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.test", "250")
}

// TestRSETTakesNoArgument: RSET has no parameters (RFC 5321 4.1.1.5); one
// with an argument is a syntax error (501 5.5.4, as Postfix answers) and
// resets nothing, where go-smtp reset the transaction. NOOP may carry a
// string (4.1.1.9).
func TestRSETTakesNoArgument(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	if got, want := r.cmd("RSET now", "5"), "501 5.5.4 Syntax error, no parameters allowed"; got != want {
		t.Fatalf("RSET now: %q, want %q", got, want)
	}
	r.cmd("MAIL FROM:<b@example.org>", "503 5.5.1 Nested MAIL command")
	r.cmd("NOOP anything", "250")
	r.cmd("rset", "250")
	r.cmd("MAIL FROM:<b@example.org>", "250")
}

// TestLenientPaths pins what README promises: as Postfix by default
// (strict_rfc821_envelopes = no), a blank after the colon and a path
// without angle brackets are taken, parameters included.
func TestLenientPaths(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM: <a@example.org> SIZE=10", "250 2.1.0 Sender <a@example.org> OK")
	r.cmd("RCPT TO: <bob@example.test>", "250 2.1.5 Recipient <bob@example.test> OK")
	r.cmd("RCPT TO:carol@example.test NOTIFY=NEVER", "250 2.1.5 Recipient <carol@example.test> OK")
	r.cmd("RSET", "250")
	r.cmd("MAIL FROM:a@example.org", "250 2.1.0 Sender <a@example.org> OK")
}

// A command out of sequence gets go-smtp's 503 whatever its parameters,
// as Postfix answers: the parameter checks come after the order checks.
func TestParamsOutOfSequence(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.expect("220")
	if got := r.cmd("MAIL FROM:<a@example.org> SIZE=1 SIZE=1", "5"); strings.Contains(got, "Duplicate") {
		t.Errorf("MAIL before EHLO: %q, want go-smtp's order reply", got)
	}
	r.cmd("EHLO c.example.org", "250")
	r.cmd("RCPT TO:<bob@example.test> NOTIFY=NEVER NOTIFY=NEVER", "503 5.5.1")
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<bob@example.test> NOTIFY=NEVER NOTIFY=NEVER", "501 5.5.4 Duplicate parameter")
}
