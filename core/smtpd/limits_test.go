package smtpd

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/rules"
	"github.com/portcullis-mta/portcullis/sdk"
)

func TestConnectionLimits(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxConnections = 3
	cfg.Limits.MaxConnectionsPerIP = 2
	ts := startServer(t, cfg, nil)
	a := newRaw(t, ts.addr(), 2)
	a.expect("220")
	b := newRaw(t, ts.addr(), 2)
	b.expect("220")
	c := newRaw(t, ts.addr(), 2)
	c.expect("421 4.7.0 mx.example.test Too many connections from your address")
	if !c.closed() {
		t.Fatal("per-IP refusal left the connection open")
	}
	d := newRaw(t, ts.addr(), 3)
	d.expect("220")
	e := newRaw(t, ts.addr(), 4)
	e.expect("421 4.7.0 mx.example.test Too many connections, try again later")
	if !e.closed() {
		t.Fatal("refusal left the connection open")
	}
	// Freed slots are given back.
	a.cmd("QUIT", "221")
	b.cmd("QUIT", "221")
	waitFor(t, func() bool { return ts.connCount() <= 1 })
	f := newRaw(t, ts.addr(), 2)
	f.expect("220")
}

func (s *Server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.perListener {
		n += c
	}
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not reached")
}

func TestPregreet(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.PregreetDelay = config.Duration(300 * time.Millisecond)
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.send("EHLO eager.example\r\n")
	r.expect("554 5.5.1 Protocol error: client sent data before greeting")
	r.refusedUntilQuit(1)
	polite := newRaw(t, ts.addr(), 2)
	polite.expect("220")
	polite.cmd("EHLO polite.example", "250")
}

func TestMessageLimits(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxMessageBytes = 2000
	cfg.Limits.MaxRecipients = 3
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.expect("220")
	if !strings.Contains(r.cmd("EHLO c.example.org", "250"), "SIZE 2000") {
		t.Fatal("SIZE not advertised with the limit")
	}
	r.cmd("MAIL FROM:<a@example.org> SIZE=5000", "552 5.3.4 Message size exceeds fixed limit")
	// Past 32 bits (RFC 1870 sets no bound): still too big, not a syntax error.
	r.cmd("MAIL FROM:<a@example.org> SIZE=4294967296", "552 5.3.4 Message size exceeds fixed limit")
	r.cmd("MAIL FROM:<a@example.org> BODY=8BITMIME size=99999999999999999999999", "552 5.3.4")
	r.cmd("MAIL FROM:<a@example.org> SIZE=12x", "501")
	r.cmd("MAIL FROM:<a@example.org> SIZE=500", "250")
	for i := 0; i < 3; i++ {
		r.cmd("RCPT TO:<u"+string(rune('a'+i))+"@example.test>", "250")
	}
	r.cmd("RCPT TO:<ud@example.test>", "452 4.5.3 Too many recipients")
	r.cmd("DATA", "354")
	r.send("Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef\r\n", 100) + ".\r\n")
	r.expect("552 5.3.4 Message size exceeds fixed limit")
	if n := len(ts.queued(t)); n != 0 {
		t.Fatalf("%d queued", n)
	}
	// The session goes on.
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<ua@example.test>", "250")
	r.cmd("DATA", "354")
	r.send(message("small") + ".\r\n")
	r.expect("250 2.0.0")
}

func TestBadCommandLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxBadCommands = 3
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("FOO", "500 5.5.2")
	r.cmd("MAIL FROM:broken", "501")
	r.cmd("VRFY x", "502 5.5.1")
	r.send("BAR\r\n")
	r.expect("500 5.5.2")
	r.expect("421 4.7.0 mx.example.test Too many errors")
	if !r.closed() {
		t.Fatal("connection left open")
	}
}

// TestErrorLimitCountsRefusals: refused recipients count toward
// max_bad_commands, as refusals do in Postfix's smtpd_hard_error_limit,
// so one connection cannot probe addresses (a relay, a harvest) without
// end; a message accepted starts the count again; temporary replies (452
// too many recipients, which asks for another transaction) do not count.
func TestErrorLimitCountsRefusals(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxBadCommands = 3
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<x@elsewhere.invalid>", "554 5.7.1")
	r.cmd("RCPT TO:<y@elsewhere.invalid>", "554 5.7.1")
	r.cmd("RCPT TO:<bob@example.test>", "250")
	r.cmd("DATA", "354")
	r.send(message("delivered") + ".\r\n")
	r.expect("250 2.0.0")
	r.cmd("MAIL FROM:<a@example.org>", "250")
	for _, to := range []string{"v1", "v2", "v3"} {
		r.cmd("RCPT TO:<"+to+"@elsewhere.invalid>", "554 5.7.1")
	}
	r.send("RCPT TO:<v4@elsewhere.invalid>\r\n")
	r.expect("554 5.7.1")
	r.expect("421 4.7.0 mx.example.test Too many errors")
	if !r.closed() {
		t.Fatal("connection left open")
	}
	if n := len(ts.queued(t)); n != 1 {
		t.Errorf("%d queued, want the one accepted", n)
	}

	// 452 4.5.3 past max_recipients: a client sending more recipients than
	// that in one transaction goes on, as RFC 5321 4.5.3.1.10 asks.
	cfg = testConfig(t)
	cfg.Limits.MaxBadCommands, cfg.Limits.MaxRecipients = 3, 2
	ts = startServer(t, cfg, nil)
	r = newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	for i := range 8 {
		want := "250"
		if i >= 2 {
			want = "452 4.5.3"
		}
		r.cmd(fmt.Sprintf("RCPT TO:<u%d@example.test>", i), want)
	}
	r.cmd("DATA", "354")
	r.send(message("first two") + ".\r\n")
	r.expect("250 2.0.0")
}

func TestDataTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.DataTimeout = config.Duration(400 * time.Millisecond)
	ts := startServer(t, cfg, nil)
	t.Run("slow but moving", func(t *testing.T) {
		r := newRaw(t, ts.addr(), 2)
		r.toData()
		r.send("Subject: slow\r\n\r\n")
		// 8 chunks, each well inside the per-read timeout, together
		// far longer than it.
		for i := 0; i < 8; i++ {
			time.Sleep(150 * time.Millisecond)
			r.send("line\r\n")
		}
		r.send(".\r\n")
		r.expect("250 2.0.0")
	})
	t.Run("stalled", func(t *testing.T) {
		r := newRaw(t, ts.addr(), 2)
		r.toData()
		r.send("Subject: stalled\r\n\r\npart")
		r.expect("421 4.4.2")
		if !r.closed() {
			t.Fatal("connection left open")
		}
		if n := len(ts.queued(t)); n != 1 {
			t.Fatalf("%d queued, want only the slow one", n)
		}
	})
}

// TestLongCommandLine: the rest of a line longer than the guard's buffer
// is not taken for a command.
func TestLongCommandLine(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxLineLength = 20000
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	pad := strings.Repeat("x", readBufSize-len("NOOP ")) + "VRFY bob"
	r.cmd("NOOP "+pad, "250")
	r.cmd("QUIT", "221")
}

// TestLongCommandLineChecked: a command line longer than the guard's read
// buffer but within max_line_length passes the same checks as a short one
// (verbs refused here, bare CR and NUL, HELO length), and one over the
// limit is refused and the session closed, the first line of a session
// included.
func TestLongCommandLineChecked(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxLineLength = 8192
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	spaces := strings.Repeat(" ", 5000)
	r.cmd("VRFY bob"+spaces, "502 5.5.1")
	r.cmd("BDAT 30 LAST"+spaces, "502 5.5.1")
	r.cmd("NOOP x\x00y"+spaces, "500 5.5.2 Syntax error: bare CR")
	r.cmd("EHLO "+strings.Repeat("a", 5000), "501 5.5.2 HELO name too long")
	r.cmd("NOOP "+spaces, "250")
	r.cmd("NOOP "+strings.Repeat("x", 8200), "500 5.5.2 Line too long")
	if !r.hungUp() {
		t.Fatal("connection left open after a line over max_line_length")
	}

	cfg = testConfig(t) // max_line_length 4096, the read buffer's size
	ts = startServer(t, cfg, nil)
	r = newRaw(t, ts.addr(), 2)
	r.expect("220")
	line := "EHLO evil\rX-Injected:\x00z"
	r.cmd(line+strings.Repeat("A", readBufSize+1-len(line)), "500 5.5.2 Line too long")
	if !r.hungUp() {
		t.Fatal("connection left open after a first line over max_line_length")
	}
	if strings.Contains(ts.logs.String(), "X-Injected") {
		t.Fatal("the over-long line reached go-smtp")
	}
}

// TestCommandTimeoutPartialLine: a command line the command timeout cuts
// short is not executed (it never passed the guard's checks); the client
// gets 421 4.4.2 and the connection closes (RFC 5321 4.5.3.2.7).
func TestCommandTimeoutPartialLine(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.CommandTimeout = config.Duration(200 * time.Millisecond)
	ts := startServer(t, cfg, nil)
	for _, part := range []string{"MAIL FROM:<a\rb@example.org>", "NOOP"} {
		r := newRaw(t, ts.addr(), 2)
		r.hello()
		r.send(part)
		r.expect("421 4.4.2")
		if !r.hungUp() {
			t.Fatalf("after %q: connection left open", part)
		}
	}
	if strings.Contains(ts.logs.String(), "msg=mail ") {
		t.Fatal("a MAIL cut short by the timeout was executed")
	}
}

// TestCommandLineTooLong: a command over max_line_length gets a syntax
// error with its enhanced code (RFC 3463 X.5.2), not go-smtp's X.4.0
// (a routing status), and the connection ends.
func TestCommandLineTooLong(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxLineLength = 1000
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("NOOP "+strings.Repeat("x", 1200), "500 5.5.2 Line too long")
	if !r.hungUp() {
		t.Fatal("connection left open")
	}
}

func TestClampSize(t *testing.T) {
	for _, tt := range []struct{ arg, want string }{
		{"FROM:<a@x> SIZE=4294967296", "FROM:<a@x> SIZE=4294967295"},
		{"FROM:<a@x> BODY=8BITMIME size=18446744073709551616 SMTPUTF8", "FROM:<a@x> BODY=8BITMIME SIZE=4294967295 SMTPUTF8"},
		{"FROM:<a@x> SIZE=4294967295", ""},
		{"FROM:<a@x> SIZE=1000", ""},
		{"FROM:<a@x> SIZE=-1", ""},
		{"FROM:<a@x> SIZE=", ""},
		{"FROM:<SIZE=99999999999@x>", ""},
		{"FROM:a@x SIZE=99999999999", ""}, // no path: go-smtp's syntax error stands
	} {
		got, ok := clampSize(tt.arg)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("clampSize(%q) = %q %v, want %q", tt.arg, got, ok, tt.want)
		}
	}
}

// TestConnectionRate: limits.max_connection_rate lets a client open that
// many connections in a minute, then refuses it with 421 4.7.0 until its
// bucket refills; other clients and relay.networks are not affected.
func TestConnectionRate(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxConnectionRate = 3
	var mu sync.Mutex
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ts := startServer(t, cfg, func(d *Deps) {
		d.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	for range 3 {
		c := newRaw(t, ts.addr(), 2)
		c.expect("220")
		c.cmd("QUIT", "221")
	}
	over := newRaw(t, ts.addr(), 2)
	over.expect("421 4.7.0 mx.example.test Too many connections from your address in the last minute")
	if !over.closed() {
		t.Fatal("the refused connection was left open")
	}
	newRaw(t, ts.addr(), 3).expect("220") // another client
	for range 5 {
		newRaw(t, ts.addr(), 1).expect("220") // 127.0.0.1 is in relay.networks
	}
	advance(20 * time.Second) // a third of a minute: one token back
	newRaw(t, ts.addr(), 2).expect("220")
	newRaw(t, ts.addr(), 2).expect("421 4.7.0")
	if !strings.Contains(ts.logs.String(), "reason=\"connection rate limit\"") {
		t.Errorf("no log line for the refusal:\n%s", ts.logs.String())
	}
}

func TestConnRateBucket(t *testing.T) {
	r := newConnRate()
	k := limitKey(netip.MustParseAddr("192.0.2.1"))
	t0 := time.Unix(1e9, 0)
	for i := range 2 {
		if !r.allow(k, 2, t0) {
			t.Fatalf("connection %d refused", i+1)
		}
	}
	if r.allow(k, 2, t0) {
		t.Fatal("third connection in the same instant allowed")
	}
	if r.allow(k, 2, t0.Add(29*time.Second)) {
		t.Fatal("allowed before a token came back (one per 30s)")
	}
	if !r.allow(k, 2, t0.Add(31*time.Second)) {
		t.Fatal("refused after a token came back")
	}
	if !r.allow(limitKey(netip.MustParseAddr("2001:db8::1")), 0, t0) {
		t.Fatal("limit 0 refused")
	}
	// Idle clients are swept once the map is large.
	for i := range sweepAt {
		r.allow(limitKey(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})), 2, t0)
	}
	r.allow(k, 2, t0.Add(2*time.Minute))
	if n := len(r.m); n != 1 {
		t.Errorf("%d clients kept after the sweep, want 1", n)
	}
}

// TestMaxHops: a message that already carries max_hops Received fields
// (with ours it would be over) is refused with 554 5.4.6 at the end of
// DATA, as a mail loop; one fewer passes. Received-like text in the body
// or in a folded line does not count.
func TestMaxHops(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxHops = 5
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 1)
	r.hello()
	send := func(hops int, want string) {
		t.Helper()
		r.cmd("MAIL FROM:<a@example.org>", "250")
		r.cmd("RCPT TO:<b@example.test>", "250")
		r.cmd("DATA", "354")
		var b strings.Builder
		for i := range hops {
			fmt.Fprintf(&b, "Received: from h%d.example by h%d.example;\r\n\tFri, 27 Nov 2026 12:00:00 +0000\r\n", i, i+1)
		}
		b.WriteString("Subject: hops\r\n\r\nReceived: from body text\r\nReceived: again\r\n.\r\n")
		r.send(b.String())
		r.expect(want)
	}
	send(4, "250")
	send(5, "554 5.4.6 Too many hops (5 Received fields)")
	r.cmd("QUIT", "221")
}

func TestHopCounter(t *testing.T) {
	msg := "received: a\r\nX-Received: no\r\nReceived:b\r\n Received: folded\r\nRECEIVED: c\r\nSubject: s\r\n\r\nReceived: body\r\n"
	for _, size := range []int{1, 2, 3, 7, 1000} {
		var h hopCounter
		for i := 0; i < len(msg); i += size {
			h.Write([]byte(msg[i:min(i+size, len(msg))]))
		}
		if h.n != 3 || !h.done {
			t.Errorf("chunks of %d: %d hops (done %v), want 3", size, h.n, h.done)
		}
	}
}

// TestConnectionLimitPerListener: max_connections holds per listener, as
// Postfix's process limit holds per service: strangers who fill the MX
// port leave the submission port its own slots.
func TestConnectionLimitPerListener(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxConnections = 2
	cfg.Listeners = append(cfg.Listeners, subListener("127.0.0.3:0"))
	ts := startServer(t, cfg, nil)
	newRaw(t, ts.addr(), 2).expect("220")
	newRaw(t, ts.addr(), 4).expect("220")
	newRaw(t, ts.addr(), 5).expect("421 4.7.0 mx.example.test Too many connections")
	sub := ts.Addr("sub").String()
	newRaw(t, sub, 6).expect("220")
	newRaw(t, sub, 7).expect("220")
	newRaw(t, sub, 8).expect("421 4.7.0")
}

// TestPregreetRules: conn.pregreet is true in the rules of a client that
// talked before the greeting. A connect rule may accept it (it then goes
// on, its early EHLO answered, with conn.pregreet still true at MAIL) or
// refuse it with its own reply; with no connect rule deciding, the
// built-in refusal stands. A polite client has conn.pregreet false.
func TestPregreetRules(t *testing.T) {
	set, err := rules.Parse("r.yaml", []byte(`
rules:
  - {name: known-eager, phase: connect, when: 'conn.pregreet && conn.ip == "127.0.0.3"', action: accept}
  - {name: eager-reply, phase: connect, when: 'conn.pregreet && conn.ip == "127.0.0.4"', action: reject, reply: '554 5.7.1 Wait for the greeting'}
  - {name: eager-mail, phase: mail, when: 'conn.pregreet', action: reject, reply: '550 5.7.1 Talked first'}
`))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := pipeline.New(set, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Limits.PregreetDelay = config.Duration(300 * time.Millisecond)
	ts := startServer(t, cfg, func(d *Deps) { d.Pipeline = eng })

	r := newRaw(t, ts.addr(), 3) // accepted by a rule
	r.send("EHLO eager.example\r\n")
	r.expect("220")
	r.expect("250")
	r.cmd("MAIL FROM:<a@example.org>", "550 5.7.1 Talked first")

	r = newRaw(t, ts.addr(), 4) // refused by a rule, in its words
	r.send("EHLO eager.example\r\n")
	r.expect("554 5.7.1 Wait for the greeting")
	r.refusedUntilQuit(1)

	r = newRaw(t, ts.addr(), 5) // no rule decides: the built-in refusal
	r.send("EHLO eager.example\r\n")
	r.expect("554 5.5.1 Protocol error: client sent data before greeting")
	r.refusedUntilQuit(1)

	r = newRaw(t, ts.addr(), 3) // polite: conn.pregreet false
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
}

// The header scan that counts Received fields keeps the Message-ID for the
// queued log line, however the bytes come (a field folded onto the next
// line too), and stops at the end of the header.
func TestHeaderScanMessageID(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{"Received: a\r\nMessage-ID: <abc@example.org>\r\nSubject: x\r\n\r\nMessage-ID: <body@x>\r\n", "<abc@example.org>"},
		{"message-id:\r\n <folded@example.org>\r\nSubject: x\r\n\r\n", "<folded@example.org>"},
		{"Subject: x\r\n\r\nMessage-ID: <body@x>\r\n", ""},
		{"Message-ID: <a\x01b@x>\r\n\r\n", "<a?b@x>"},
		{"Message-ID: <first@x>\r\nMessage-ID: <second@x>\r\n\r\n", "<first@x>"},
	} {
		for _, chunk := range []int{1, 3, 1 << 20} {
			var h hopCounter
			for b := []byte(tc.msg); len(b) > 0; {
				n := min(chunk, len(b))
				h.Write(b[:n])
				b = b[n:]
			}
			if got := h.messageID(); got != tc.want {
				t.Errorf("%q in chunks of %d: message ID %q, want %q", tc.msg, chunk, got, tc.want)
			}
		}
	}
	var h hopCounter
	h.Write([]byte("Received: a\r\nReceived: b\r\nMessage-ID: <m@x>\r\nReceived: c\r\n\r\nReceived: body\r\n"))
	if h.n != 3 {
		t.Errorf("%d Received fields counted, want 3", h.n)
	}
}

// noPregreetRunner is a pipeline with connect rules none of which reads
// conn.pregreet; it records the phases it was asked about.
type noPregreetRunner struct {
	mu   sync.Mutex
	seen []sdk.Phase
}

func (r *noPregreetRunner) Wants(p sdk.Phase) bool { return p == sdk.PhaseConnect }
func (r *noPregreetRunner) ReadsPregreet() bool    { return false }
func (r *noPregreetRunner) Run(_ context.Context, req *sdk.Request, _ map[string]*sdk.Result) (*pipeline.Decision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, req.Phase)
	return &pipeline.Decision{Action: pipeline.Continue}, nil
}

// With no rule that reads conn.pregreet, an early talker is refused
// before the connect phase (no stage, no host name lookup for it), as
// before rules could see it; a polite client still gets the connect phase.
func TestPregreetWithoutRulesSkipsConnectPhase(t *testing.T) {
	run := &noPregreetRunner{}
	cfg := testConfig(t)
	cfg.Limits.PregreetDelay = config.Duration(300 * time.Millisecond)
	ts := startServer(t, cfg, func(d *Deps) { d.Pipeline = run })
	r := newRaw(t, ts.addr(), 5)
	r.send("EHLO eager.example\r\n")
	r.expect("554 5.5.1 Protocol error: client sent data before greeting")
	run.mu.Lock()
	n := len(run.seen)
	run.mu.Unlock()
	if n != 0 {
		t.Fatalf("the connect phase ran %d times for an early talker no rule can accept", n)
	}
	r = newRaw(t, ts.addr(), 5)
	r.hello()
	run.mu.Lock()
	defer run.mu.Unlock()
	if len(run.seen) != 1 || run.seen[0] != sdk.PhaseConnect {
		t.Fatalf("a polite client's phases: %v, want the connect phase", run.seen)
	}
}

// TestRefusalLogged: a refusal's log line has the reply as the client got
// it, enhanced code included, and inside a transaction the sender, as
// Postfix's "reject: RCPT from ...: 554 5.7.1 ...; from=<...>".
func TestRefusalLogged(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<x@elsewhere.invalid>", "554 5.7.1")
	logs := ts.logs.String()
	if !strings.Contains(logs, `msg=refused`) || !strings.Contains(logs, `reply="554 5.7.1 <x@elsewhere.invalid>: Relay access denied" code=554 from=a@example.org`) {
		t.Errorf("refusal logged:\n%s", logs)
	}
}

// TestGoSMTPRefusalLogged: the refusals go-smtp decides itself (a syntax
// error, a command out of sequence, the command timeout) are logged with
// the reply as sent, like the others, and each only once.
func TestGoSMTPRefusalLogged(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.CommandTimeout = config.Duration(300 * time.Millisecond)
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	syntax := r.cmd("MAIL FROM:garbage", "501")
	sequence := r.cmd("RCPT TO:<bob@example.test>", "503")
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<x@elsewhere.invalid>", "554 5.7.1")
	timeout := r.expect("421 4.4.2")
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), "msg=disconnect") })
	var info []string
	for _, l := range strings.Split(ts.logs.String(), "\n") {
		if strings.Contains(l, "level=INFO") {
			info = append(info, l)
		}
	}
	logged := func(msg, rest string) int {
		n := 0
		for _, l := range info {
			if strings.Contains(l, " msg="+msg+" ") && strings.HasSuffix(l, rest) {
				n++
			}
		}
		return n
	}
	for _, c := range []struct{ msg, rest string }{
		{"refused", `command=MAIL reply="` + strings.TrimSpace(syntax) + `" code=501`},
		{"refused", `command=RCPT reply="` + strings.TrimSpace(sequence) + `" code=503`},
		{`"closed session: command timeout"`, `reply="` + strings.TrimSpace(timeout) + `"`},
		{"refused", `rcpt=x@elsewhere.invalid`},
	} {
		if n := logged(c.msg, c.rest); n != 1 {
			t.Errorf("%d info lines msg=%s ... %s, want 1:\n%s", n, c.msg, c.rest, strings.Join(info, "\n"))
		}
	}
}

// TestDuplicateRecipients: the same mailbox named again in a transaction
// (another domain case, quoted, U-label) is accepted once: the queue, and
// so the next hop, has it once, and it does not count again against
// max_recipients. Local parts keep their case (RFC 5321 2.4).
func TestDuplicateRecipients(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxRecipients = 2
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org> SMTPUTF8", "250")
	for _, rcpt := range []string{"<bob@example.test>", "<bob@EXAMPLE.TEST>", `<"bob"@example.test>`, "<bob@ｅｘａｍｐｌｅ.test>", "<BOB@example.test>"} {
		r.cmd("RCPT TO:"+rcpt, "250")
	}
	r.cmd("RCPT TO:<carol@example.test>", "452 4.5.3")
	r.cmd("DATA", "354")
	r.send("Subject: dup\r\n\r\nbody\r\n.\r\n")
	r.expect("250 2.0.0")
	q := ts.queued(t)
	if len(q) != 1 {
		t.Fatalf("%d queued", len(q))
	}
	var got []string
	for _, rc := range q[0].Rcpts {
		got = append(got, rc.Addr)
	}
	if strings.Join(got, " ") != "bob@example.test BOB@example.test" {
		t.Fatalf("queued recipients %q, want bob@example.test and BOB@example.test once each", got)
	}
}

// TestDataTimeoutNotCommandTimeout: inside DATA each read waits
// data_timeout, outside it command_timeout; the two are set apart so that
// neither can stand in for the other. A client stalled mid-message gets
// 421 4.4.2 after data_timeout even with a long command_timeout (or a
// stalled upload holds its connection slot for the whole command
// timeout), and a pause in the message longer than command_timeout but
// within data_timeout does not cut it off. The only clock in the
// assertions is the reply's read watchdog (10s against a 30s
// command_timeout).
func TestDataTimeoutNotCommandTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.CommandTimeout = config.Duration(30 * time.Second)
	cfg.Limits.DataTimeout = config.Duration(300 * time.Millisecond)
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.toData()
	r.send("Subject: stalled\r\n\r\npart")
	r.expect("421 4.4.2")
	if !r.hungUp() {
		t.Fatal("connection left open after the data timeout")
	}
	if n := len(ts.queued(t)); n != 0 {
		t.Fatalf("%d queued from a stalled upload", n)
	}

	cfg = testConfig(t)
	cfg.Limits.CommandTimeout = config.Duration(time.Second)
	cfg.Limits.DataTimeout = config.Duration(30 * time.Second)
	ts = startServer(t, cfg, nil)
	r = newRaw(t, ts.addr(), 2)
	r.toData()
	r.send("Subject: pause\r\n\r\nfirst half\r\n")
	time.Sleep(2 * time.Second) // twice the command timeout, nowhere near the data timeout
	r.send("second half\r\n.\r\n")
	r.expect("250 2.0.0")
}

// TestSizeLimitsExact: max_message_bytes is the largest message accepted,
// not one less or one more (RFC 1870: SIZE advertises the maximum the
// server accepts). Both where it is checked: the SIZE declared at MAIL,
// and the bytes of the message (without the dot line; our Received field
// not counted) in DATA.
func TestSizeLimitsExact(t *testing.T) {
	const max = 2000
	cfg := testConfig(t)
	cfg.Limits.MaxMessageBytes = max
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd(fmt.Sprintf("MAIL FROM:<a@example.org> SIZE=%d", max+1), "552 5.3.4 Message size exceeds fixed limit")
	r.cmd(fmt.Sprintf("MAIL FROM:<a@example.org> SIZE=%d", max), "250")
	r.cmd("RSET", "250")

	sized := func(n int) string {
		head := "Subject: sized\r\n\r\n"
		return head + strings.Repeat("y", n-len(head)-2) + "\r\n"
	}
	for _, tc := range []struct {
		size int
		want string
	}{
		{max, "250 2.0.0"},
		{max + 1, "552 5.3.4 Message size exceeds fixed limit"},
	} {
		msg := sized(tc.size)
		if len(msg) != tc.size {
			t.Fatalf("test message is %d bytes, want %d", len(msg), tc.size)
		}
		r.cmd("MAIL FROM:<a@example.org>", "250")
		r.cmd("RCPT TO:<bob@example.test>", "250")
		r.cmd("DATA", "354")
		r.send(msg + ".\r\n")
		r.expect(tc.want)
	}
	if n := len(ts.queued(t)); n != 1 {
		t.Fatalf("%d queued, want the message of exactly max_message_bytes", n)
	}
}

// TestCommandLineLengthExact: max_line_length counts the whole command
// line, CRLF included (as RFC 5321 4.5.3.1.4 counts its 512): a line of
// exactly that many octets is a command, one octet more is refused and
// ends the session, however the limit is set and whatever the line holds.
// The guard's own check must hold at the exact limit: go-smtp's limit
// stands behind it only for lines handed over unchanged, not for what the
// guard answers itself (VRFY), refuses for its bytes (NUL), or rewrites
// shorter (RCPT TO:<postmaster>), which would otherwise be executed.
func TestCommandLineLengthExact(t *testing.T) {
	pad := func(cmd string, n int) string { return cmd + strings.Repeat(" ", n-len(cmd)-len("\r\n")) }
	for _, max := range []int{1000, readBufSize, 6000} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Limits.MaxLineLength = max
			ts := startServer(t, cfg, nil)
			r := newRaw(t, ts.addr(), 2)
			r.hello()
			r.cmd(pad("NOOP x", max), "250")
			r.cmd(pad("VRFY bob", max), "502 5.5.1")
			r.cmd(pad("NOOP x\x00y", max), "500 5.5.2 Syntax error")
			r.cmd("MAIL FROM:<a@example.org>", "250")
			r.cmd(pad("RCPT TO:<postmaster>", max), "250")
			for _, cmd := range []string{"NOOP x", "VRFY bob", "NOOP x\x00y", "RCPT TO:<postmaster>"} {
				r := newRaw(t, ts.addr(), 2)
				r.hello()
				r.cmd("MAIL FROM:<a@example.org>", "250")
				r.cmd(pad(cmd, max+1), "500 5.5.2 Line too long")
				if !r.hungUp() {
					t.Fatalf("%q: connection left open after a line over max_line_length", cmd)
				}
			}
		})
	}
}
