package smtpd

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/sdk"
)

func TestReloadKeepsSessions(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxRecipients = 1
	ts := startServer(t, cfg, nil)
	old := newRaw(t, ts.addr(), 2)
	old.expect("220")
	old.cmd("EHLO c.example.org", "250")
	old.cmd("MAIL FROM:<a@example.org>", "250")

	next := *cfg
	next.Limits.MaxRecipients = 5
	next.Hostname = "mx2.example.test"
	d := ts.deps
	d.Config = &next
	if err := ts.Reload(d); err != nil {
		t.Fatal(err)
	}
	// The running session finishes on the old config.
	old.cmd("RCPT TO:<a@example.test>", "250")
	old.cmd("RCPT TO:<b@example.test>", "452 4.5.3")
	old.cmd("DATA", "354")
	old.send(message("across reload") + ".\r\n")
	old.expect("250 2.0.0")
	// A new one sees the new config.
	r := newRaw(t, ts.addr(), 2)
	r.expect("220 mx2.example.test")
	r.cmd("EHLO c.example.org", "250")
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<a@example.test>", "250")
	r.cmd("RCPT TO:<b@example.test>", "250")

	bad := next
	bad.Listeners = nil
	d.Config = &bad
	if err := ts.Reload(d); err == nil {
		t.Fatal("reload without listeners accepted")
	}
	r.cmd("NOOP", "250")
}

func TestShutdownDrains(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<bob@example.test>", "250")

	done := make(chan error, 1)
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	go func() { done <- ts.Shutdown(ctx) }()
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", ts.addr(), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// The transaction in flight completes; then the session is told to go.
	r.cmd("DATA", "354")
	r.send(message("during shutdown") + ".\r\n")
	r.expect("250 2.0.0")
	r.cmd("MAIL FROM:<a@example.org>", "421 4.3.2")
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if n := len(ts.queued(t)); n != 1 {
		t.Fatalf("%d queued", n)
	}
}

// TestShutdownGraceOver: sessions still in a transaction when the grace
// is over are told 421 4.3.2 before the close (RFC 5321 3.8), between
// commands and in the middle of DATA alike, and nothing half sent is
// queued; the log says what the client was told.
func TestShutdownGraceOver(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	d := newRaw(t, ts.addr(), 3)
	d.hello()
	d.cmd("MAIL FROM:<a@example.org>", "250")
	d.cmd("RCPT TO:<bob@example.test>", "250")
	d.cmd("DATA", "354")
	d.send("Subject: half\r\n\r\nthe first line of a long message\r\n")
	ctx, cancel := contextWithTimeout(300 * time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(ctx) }()
	r.expect("421 4.3.2")
	d.expect("421 4.3.2")
	if err := <-done; err == nil {
		t.Fatal("shutdown with a stuck transaction reported a clean drain")
	}
	if !r.closed() || !d.closed() {
		t.Fatal("session left open after the grace")
	}
	if n := len(ts.queued(t)); n != 0 {
		t.Errorf("%d queued from a transfer cut short", n)
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, "shutdown grace over") || !strings.Contains(logs, "code=421") {
		t.Errorf("not logged as told:\n%s", logs)
	}
	if strings.Contains(logs, "internal error") || strings.Contains(logs, "code=451") {
		t.Errorf("logged a reply not sent:\n%s", logs)
	}
}

// TestShutdownClosesIdleSessions: idle sessions are told 421 at once, so a
// SIGTERM does not wait out the grace for clients that keep connections.
func TestShutdownClosesIdleSessions(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	idle := newRaw(t, ts.addr(), 2)
	idle.expect("220")
	idle.cmd("EHLO c.example.org", "250")
	busy := newRaw(t, ts.addr(), 3)
	busy.expect("220")
	busy.cmd("EHLO c.example.org", "250")
	busy.cmd("MAIL FROM:<a@example.org>", "250")
	busy.send("RCPT TO:<bob@exa")

	done := make(chan error, 1)
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	go func() { done <- ts.Shutdown(ctx) }()
	idle.expect("421 4.3.2")
	if !idle.closed() {
		t.Fatal("idle session left open")
	}
	// The busy one's half-sent command survives the wake-up.
	busy.send("mple.test>\r\n")
	busy.expect("250")
	busy.cmd("DATA", "354")
	busy.send(message("busy") + ".\r\n")
	busy.expect("250 2.0.0")
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestShutdownEndsRefusedWait: a connection refused in its greeting and
// waiting for QUIT (awaitQuit) is closed at shutdown, as an idle session
// is, rather than holding the SIGTERM up for its 10 s.
func TestShutdownEndsRefusedWait(t *testing.T) {
	run := &ruleRunner{rules: map[sdk.Phase]func(*sdk.Request) *pipeline.Decision{
		sdk.PhaseConnect: func(*sdk.Request) *pipeline.Decision { return &pipeline.Decision{Action: pipeline.Reject} },
	}}
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Pipeline = run })
	r := newRaw(t, ts.addr(), 5)
	r.expect("554 5.7.1")
	r.cmd("EHLO c.example.org", "503 5.5.1") // waiting for QUIT now

	ctx, cancel := contextWithTimeout(30 * time.Second)
	defer cancel()
	start := time.Now()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("shutdown took %v: it waited for the refused client", took)
	}
	if !r.closed() {
		t.Fatal("refused connection left open")
	}
}
