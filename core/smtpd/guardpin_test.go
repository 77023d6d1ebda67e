package smtpd

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestGoSMTPParamRefusalsRewritten: go-smtp's 500 for a malformed AUTH=
// value becomes 501 and its 504 for a known parameter not offered 555
// (RFC 5321 4.1.1.11, 4.2.3), and the refusal is logged with the code as
// sent, under the command it answers.
func TestGoSMTPParamRefusalsRewritten(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org> AUTH=x+", "501 5.5.4 Malformed AUTH parameter value")
	r.cmd("MAIL FROM:<a@example.org> REQUIRETLS", "555 5.5.4 REQUIRETLS is not implemented")
	r.cmd("MAIL FROM:<a@example.org>", "250 2.1.0")
	r.cmd("QUIT", "221")
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), "msg=disconnect") })
	logs := ts.logs.String()
	for _, want := range []string{
		`msg=refused session=`,
		`command=MAIL reply="501 5.5.4 Malformed AUTH parameter value" code=501`,
		`command=MAIL reply="555 5.5.4 REQUIRETLS is not implemented" code=555`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// TestDebugReplyNamesQueueID: at debug level the reply accepting a
// message carries queue_id=, as every line about a message does.
func TestDebugReplyNamesQueueID(t *testing.T) {
	ts := startServer(t, testConfig(t), nil) // its logger is at debug
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<bob@example.test>", "250")
	r.cmd("DATA", "354")
	r.send(message("id") + ".\r\n")
	id := strings.Fields(r.expect("250 2.0.0"))[2]
	want := `msg=reply session=`
	line := `queue_id=` + id + ` line="250 2.0.0 ` + id + ` ` + acceptedText + `"`
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), line) })
	if !strings.Contains(ts.logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, ts.logs.String())
	}
}

// TestIncompleteLineDropped: a command line cut short by the client's
// close is logged with its size and never executed.
func TestIncompleteLineDropped(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.send("QUIT")
	if err := r.c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), "msg=disconnect") })
	logs := ts.logs.String()
	if !strings.Contains(logs, `msg="dropped incomplete command line" session=`) || !strings.Contains(logs, `bytes=4 err=EOF`) {
		t.Errorf("no dropped line logged:\n%s", logs)
	}
	if strings.Contains(logs, "verb=QUIT") {
		t.Errorf("the cut line was handed on:\n%s", logs)
	}
}

// TestShutdownIdleSessionLogged: an idle session told 421 at shutdown is
// logged so, and a read that would see the grace over is too.
func TestShutdownIdleSessionLogged(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	idle := newRaw(t, ts.addr(), 2)
	idle.expect("220")
	idle.cmd("EHLO c.example.org", "250")
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(ctx) }()
	idle.expect("421 4.3.2")
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if logs := ts.logs.String(); !strings.Contains(logs, `msg="closed idle session for shutdown"`) {
		t.Errorf("not logged:\n%s", logs)
	}
}

// TestGuardRefusalsLogCode: the commands the guard refuses itself (an
// unknown verb, VRFY, a HELO name too long) are logged with code= as
// every other refusal is, so that one filter on the code (code=5..) finds
// them all.
func TestGuardRefusalsLogCode(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.expect("220")
	r.cmd("EHLO "+strings.Repeat("a", 256), "501 5.5.2 HELO name too long")
	r.cmd("EHLO c.example.org", "250")
	r.cmd("VRFY bob", "502 5.5.1")
	r.cmd("FROB x", "500 5.5.2")
	r.cmd("QUIT", "221")
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), "msg=disconnect") })
	logs := ts.logs.String()
	for _, want := range []string{
		`command=EHLO reply="501 5.5.2 HELO name too long (a domain has at most 255 octets)" code=501`,
		`command=VRFY reply="502 5.5.1 Command not implemented" code=502`,
		`command=FROB reply="500 5.5.2 Command not recognized" code=500`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// TestMaxConnectionsRefusalLogsCode: a connection over max_connections,
// refused before its session begins (no connect line), is logged with
// code= too, and with the listener whose limit it met (the limit holds per
// listener).
func TestMaxConnectionsRefusalLogsCode(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxConnections = 1
	ts := startServer(t, cfg, nil)
	a := newRaw(t, ts.addr(), 2)
	a.expect("220")
	newRaw(t, ts.addr(), 2).expect("421 4.")
	want := `reason="too many connections" reply="421 4.`
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), want) })
	for _, l := range strings.Split(ts.logs.String(), "\n") {
		if strings.Contains(l, want) && (!strings.HasSuffix(l, " code=421") || !strings.Contains(l, " listener=mx ")) {
			t.Errorf("refusal logged without code=421 or listener=mx: %s", l)
		}
	}
	a.cmd("QUIT", "221")
}
