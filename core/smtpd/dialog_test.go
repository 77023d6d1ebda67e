package smtpd

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/portcullis-mta/portcullis/core/internal/logbuf"
)

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// sendMail runs one transaction with go-smtp's client from 127.0.0.n.
func sendMail(t *testing.T, addr string, n int, auth sasl.Client, from string, to []string, body string) (string, error) {
	t.Helper()
	c := smtp.NewClient(dialFrom(t, addr, n))
	defer c.Close()
	if err := c.Hello("client.example.org"); err != nil {
		return "", err
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return "", err
		}
	}
	if err := c.Mail(from, nil); err != nil {
		return "", err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return "", err
		}
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := io.WriteString(w, body); err != nil {
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	_ = c.Quit()
	return resp.StatusText, nil
}

func TestRelayDecisions(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	tests := []struct {
		name string
		from int
		auth sasl.Client
		to   string
		want string // "" accepted, else the start of the error
	}{
		{"local domain from outside", 2, nil, "bob@example.test", ""},
		{"local domain case-insensitive", 3, nil, "bob@EXAMPLE.Test", ""},
		{"relay from trusted network", 1, nil, "carol@elsewhere.example", ""},
		{"relay refused from outside", 2, nil, "carol@elsewhere.example", "554 5.7.1"},
		{"relay for authenticated user", 2, sasl.NewPlainClient("", "alice", "secret"), "carol@elsewhere.example", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(ts.queued(t))
			resp, err := sendMail(t, ts.addr(), tt.from, tt.auth, "f@example.org", []string{tt.to}, message(tt.name))
			if tt.want != "" {
				if err == nil || !strings.HasPrefix(errText(err), tt.want) {
					t.Fatalf("got %v / %q, want refusal %q", err, resp, tt.want)
				}
				if n := len(ts.queued(t)); n != before {
					t.Fatalf("queue grew to %d", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			resp = strings.TrimPrefix(resp, "2.0.0 ")
			id, _, _ := strings.Cut(resp, " ")
			if !strings.HasSuffix(resp, " Message accepted for delivery") {
				t.Fatalf("reply %q", resp)
			}
			env, err := ts.q.Get(id)
			if err != nil {
				t.Fatalf("queue id %s from the reply not in the queue: %v", id, err)
			}
			checkReceived(t, ts, id, tt.to)
			if env.Rcpts[0].Addr != tt.to || env.From != "f@example.org" {
				t.Fatalf("envelope %+v", env)
			}
		})
	}
}

func errText(err error) string {
	if se, ok := err.(*smtp.SMTPError); ok {
		e := se.EnhancedCode
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, e[0], e[1], e[2], se.Message)
	}
	return err.Error()
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// checkReceived reads the message back and checks our trace field.
func checkReceived(t *testing.T, ts *testServer, id, rcpt string) {
	t.Helper()
	rc, err := ts.q.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	first, _, _ := strings.Cut(string(b), "\r\n\r\n")
	want := []string{"Received: from client.example.org (unknown [127.0.0.", "by mx.example.test (Portcullis) with ESMTP", "id " + id, "for <" + rcpt + ">;"}
	for _, w := range want {
		if !strings.Contains(first, w) {
			t.Fatalf("header lacks %q:\n%s", w, first)
		}
	}
}

func TestVerbsNotImplemented(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	if g := r.expect("220 mx.example.test ESMTP"); g != "220 mx.example.test ESMTP" {
		t.Errorf("greeting %q, want exactly %q (CONTRACT.md)", g, "220 mx.example.test ESMTP")
	}
	ehlo := r.cmd("EHLO c.example.org", "250")
	// RFC 5321 4.1.1.1: the first line names the server (a loop check reads it).
	if !strings.HasPrefix(ehlo, "250-mx.example.test Hello c.example.org") {
		t.Errorf("EHLO reply does not start with our name:\n%s", ehlo)
	}
	for _, ext := range []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN", "SIZE 26214400", "AUTH PLAIN"} {
		if !strings.Contains(ehlo, ext) {
			t.Errorf("EHLO lacks %s:\n%s", ext, ehlo)
		}
	}
	if strings.Contains(ehlo, "CHUNKING") || strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("EHLO offers CHUNKING or STARTTLS:\n%s", ehlo)
	}
	for _, v := range []string{"VRFY bob", "EXPN staff", "TURN", "vrfy bob"} {
		r.cmd(v, "502 5.5.1 Command not implemented")
	}
	r.cmd("NOOP", "250")
	// A name longer than a domain can be would go into Received as it is.
	r.cmd("EHLO "+strings.Repeat("a", 256), "501 5.5.2 HELO name too long")
	r.cmd("HELO "+strings.Repeat("a", 63)+"."+strings.Repeat("b", 63)+".example", "250")
	if got := r.cmd("HELO c.example.org", "250"); got != "250 mx.example.test Hello c.example.org" {
		t.Errorf("HELO reply %q, want our name first and no enhanced code", got)
	}
	r.cmd("QUIT", "221")
}

func TestAuthRequiredListener(t *testing.T) {
	cfg := testConfig(t)
	cfg.Listeners[0].Auth = "required"
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 1)
	r.hello()
	r.cmd("MAIL FROM:<a@example.test>", "530 5.7.0 Authentication required")
	r.cmd("AUTH PLAIN "+b64("\x00alice\x00wrong"), "535 5.7.8 Authentication credentials invalid")
	r.cmd("AUTH PLAIN "+b64("\x00alice\x00secret"), "235")
	r.cmd("MAIL FROM:<a@example.test>", "250")
}

func TestAuthLockout(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 4)
	r.hello()
	for i := 0; i < 3; i++ {
		r.cmd("AUTH PLAIN "+b64("\x00alice\x00wrong"), "535 5.7.8")
	}
	r.cmd("AUTH PLAIN "+b64("\x00alice\x00secret"), "454 4.7.0 Too many authentication failures")
	// The admin needs to know which user was being tried.
	if want := `msg="auth lockout started" session=`; !strings.Contains(ts.logs.String(), want) {
		t.Fatal("no log line for the lockout")
	}
	if want := `ip=127.0.0.4 user=alice`; !strings.Contains(ts.logs.String(), want) {
		t.Fatalf("the lockout line lacks %s:\n%s", want, ts.logs.String())
	}
	if strings.Contains(ts.logs.String(), "wrong") {
		t.Fatal("password in the log")
	}
}

// TestDSNParameters: RET, ENVID, NOTIFY and ORCPT (RFC 3461) reach the
// queue envelope.
func TestDSNParameters(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org> RET=HDRS ENVID=env+2B1 BODY=8BITMIME", "250")
	r.cmd("RCPT TO:<bob@example.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob@example.test", "250")
	r.cmd("DATA", "354")
	r.send(message("dsn") + ".\r\n")
	id := strings.Fields(r.expect("250 2.0.0"))[2]
	env, err := ts.q.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	rc := env.Rcpts[0]
	if env.DSNRet != "HDRS" || env.DSNEnvID != "env+1" || env.BodyType != "8BITMIME" ||
		strings.Join(rc.Notify, ",") != "FAILURE,DELAY" || rc.ORCPT != "rfc822;bob@example.test" {
		t.Fatalf("envelope %+v, rcpt %+v", env, rc)
	}
}

// TestPostfixUTF8ORCPT: Postfix, sending SMTPUTF8 mail to a server that
// offers DSN, gives each RCPT an ORCPT of type rfc822 holding the xtext of
// the address's UTF-8 bytes. go-smtp refused it (501 5.5.4) and Postfix
// bounced the mail; it is taken as RFC 6533's utf-8 type.
func TestPostfixUTF8ORCPT(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org> SMTPUTF8", "250")
	r.cmd("RCPT TO:<bøb@example.test> ORCPT=rfc822;b+C3+B8b@example.test NOTIFY=FAILURE", "250")
	r.cmd("RCPT TO:<carol@example.test> NOTIFY=NEVER ORCPT=rfc822;+E6+97+A5@example.test", "250")
	// Raw bytes that are not UTF-8 after "utf-8;" (go-smtp takes them as
	// they are): dropped, not kept with U+FFFD in their place.
	r.cmd("RCPT TO:<dave@example.test> ORCPT=utf-8;d\xc3(@example.test", "250")
	// A quoted local part may hold '>' and what looks like a parameter:
	// it is the address, not rewritten.
	r.cmd(`RCPT TO:<"x> ORCPT=rfc822;b+C3+B8b"@example.test>`, "250")
	r.cmd("DATA", "354")
	r.send(message("utf8 orcpt") + ".\r\n")
	id := strings.Fields(r.expect("250 2.0.0"))[2]
	env, err := ts.q.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"utf-8;bøb@example.test", "utf-8;日@example.test", "", ""}
	for i, rc := range env.Rcpts {
		if rc.ORCPT != want[i] {
			t.Errorf("recipient %s: ORCPT %q, want %q", rc.Addr, rc.ORCPT, want[i])
		}
	}
	if len(env.Rcpts) != 4 || env.Rcpts[3].Addr != "x> ORCPT=rfc822;b+C3+B8b@example.test" {
		t.Errorf("recipient %q, want the quoted one as written", env.Rcpts[len(env.Rcpts)-1].Addr)
	}
}

// TestLongLineInData: max_line_length bounds command lines, not the
// lines of a message: real mail has lines far over RFC 5322's 998 (an
// unwrapped HTML part), Postfix accepts them, and refusing one would
// bounce the message. It is queued whole, and the session goes on.
func TestLongLineInData(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.MaxLineLength = 1000
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.toData()
	header := "Subject: long\r\nX-Long: " + strings.Repeat("h", 6000) + "\r\n"
	body := strings.Repeat("x", 20000) + "\r\n" + strings.Repeat("<td>y</td>", 5000) + "\r\nend\r\n"
	r.send(header + "\r\n" + body + ".\r\n")
	id := strings.Fields(r.expect("250 2.0.0"))[2]
	got := ts.messageBody(t, id)
	if !strings.HasSuffix(got, header+"\r\n"+body) {
		t.Fatalf("queued message differs: %d bytes, ends %.80q", len(got), got[max(0, len(got)-80):])
	}
	r.cmd("NOOP "+strings.Repeat("x", 1200), "500 5.5.2 Line too long")
}

func TestAuthNeedsTLS(t *testing.T) {
	cfg, _ := starttlsConfig(t)
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.expect("220")
	// 127.0.0.2 is loopback: AUTH is offered in clear text there.
	if !strings.Contains(r.cmd("EHLO c.example.org", "250"), "AUTH PLAIN") {
		t.Fatal("AUTH not offered on loopback")
	}
	var logs bytes.Buffer
	s := &session{gc: &guardConn{srv: ts.current(), info: connInfo{ip: mustAddr("192.0.2.7"), listener: ts.current().listeners["mx"]}},
		log: slog.New(slog.NewTextHandler(&logs, nil))}
	if s.authAllowed() || len(s.AuthMechanisms()) != 0 {
		t.Fatal("AUTH allowed in clear text from a remote address")
	}
	if _, err := s.Auth("PLAIN"); err == nil || !strings.Contains(err.Error(), "538") {
		t.Fatalf("AUTH before STARTTLS: %v", err)
	}
	// The admin of a scanner that tries AUTH in clear finds the refusal.
	if want := `msg=refused phase=auth reply="538 5.7.11 Encryption required for requested authentication mechanism" code=538 mechanism=PLAIN`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, logs.String())
	}
	r.cmd("AUTH CRAM-SHA1", "504 5.5.4")
	if want := `phase=auth reply="504 5.5.4 Unrecognized authentication mechanism" code=504 mechanism=CRAM-SHA1`; !strings.Contains(ts.logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, ts.logs.String())
	}
}

// RFC 5321 4.1.1.3 and 4.5.1: RCPT TO:<Postmaster> without a domain must
// be accepted; it is queued for postmaster at the first relay domain, and
// goes through the relay policy like any address.
func TestPostmasterWithoutDomain(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2) // not trusted: the policy must accept it as local
	r.hello()
	r.cmd("MAIL FROM:<f@example.org>", "250")
	r.cmd("rcpt to: <POSTMASTER> NOTIFY=NEVER", "250")
	r.cmd("RCPT TO:<Postmaster>", "250") // the same mailbox again: kept once
	r.cmd("RCPT TO:<postmasters>", "501")
	r.cmd("DATA", "354")
	r.send("Subject: hi\r\n\r\nhello\r\n.\r\n")
	id := strings.Fields(r.expect("250 2.0.0"))[2]
	env, err := ts.q.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Rcpts) != 1 || env.Rcpts[0].Addr != "postmaster@example.test" {
		t.Fatalf("rcpts %+v", env.Rcpts)
	}
	if len(env.Rcpts[0].Notify) != 1 || env.Rcpts[0].Notify[0] != "NEVER" {
		t.Fatalf("NOTIFY lost: %+v", env.Rcpts[0])
	}
	if !strings.Contains(ts.logs.String(), "rcpt postmaster without a domain") {
		t.Fatalf("no log line:\n%s", ts.logs.String())
	}
}

func TestPostmasterRcptDomain(t *testing.T) {
	cfg := testConfig(t)
	for _, tt := range []struct {
		domains   []string
		arg, want string
		rewritten bool
	}{
		{[]string{"*.sub.example", "example.test"}, "TO:<postmaster>", "TO:<postmaster@example.test>", true},
		{[]string{".sub.example"}, "to:<PostMaster> ORCPT=rfc822;x@y", "TO:<postmaster@mx.example.test> ORCPT=rfc822;x@y", true},
		{nil, "TO:  <postmaster>", "TO:<postmaster@mx.example.test>", true},
		{nil, "TO:<postmaster@example.org>", "", false},
		{nil, "TO:<postmaster>x", "", false},
		{nil, "FROM:<postmaster>", "", false},
		{nil, "TO:<bob>", "", false},
	} {
		cfg.Relay.Domains = tt.domains
		got, ok := postmasterRcpt(tt.arg, cfg)
		if ok != tt.rewritten || got != tt.want {
			t.Errorf("%v %q: got %q %v, want %q %v", tt.domains, tt.arg, got, ok, tt.want, tt.rewritten)
		}
	}
}

// TestAuthLockoutMidExchange: an exchange opened before the lockout (334
// sent) must not get its answer checked once the client is locked out
// through its other sessions; that allowed a guess per open session.
func TestAuthLockoutMidExchange(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	waiting := newRaw(t, ts.addr(), 4)
	waiting.hello()
	waiting.cmd("AUTH PLAIN", "334")
	other := newRaw(t, ts.addr(), 4)
	other.hello()
	for i := 0; i < 3; i++ {
		other.cmd("AUTH PLAIN "+b64("\x00alice\x00wrong"), "535 5.7.8")
	}
	waiting.cmd(b64("\x00alice\x00secret"), "454 4.7.0 Too many authentication failures")
	if want := `mechanism=PLAIN result="locked out" reply="454 4.7.0 Too many authentication failures, try again later"`; !strings.Contains(ts.logs.String(), want) {
		t.Errorf("log lacks %s", want)
	}
	waiting.cmd("MAIL FROM:<a@example.test>", "250")
	waiting.cmd("RCPT TO:<c@elsewhere.example>", "554 5.7.1") // not authenticated: no relay
}

// RFC 4954 4: a response that is not base64, or that the mechanism cannot
// parse, is 501 5.5.2 (go-smtp said 454, a temporary error, for the one,
// and the guard 535 for the other); neither counts toward the lockout.
func TestAuthMalformedResponses(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 5)
	r.hello()
	for i := 0; i < 2; i++ {
		r.cmd("AUTH PLAIN !!!!", "501 5.5.2 Cannot decode response: not base64")
		r.cmd("AUTH PLAIN", "334")
		r.cmd("not base64!", "501 5.5.2 Cannot decode response: not base64")
		r.cmd("AUTH PLAIN "+b64("malformed\x00alice\x00secret"), "501 5.5.2 Cannot decode response")
	}
	r.cmd("AUTH PLAIN "+b64("\x00alice\x00secret"), "235")
}

// MAIL and RCPT get the RFC 3463 codes of their subjects (X.1.0, X.1.5),
// not go-smtp's 2.0.0 chatter.
func TestMailRcptReplies(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	if got := r.cmd("MAIL FROM:<a@example.org>", "250"); got != "250 2.1.0 Sender <a@example.org> OK" {
		t.Errorf("MAIL: %q", got)
	}
	if got := r.cmd("RCPT TO:<bob@example.test>", "250"); got != "250 2.1.5 Recipient <bob@example.test> OK" {
		t.Errorf("RCPT: %q", got)
	}
}

func TestAtInSenderDomain(t *testing.T) {
	for _, tt := range []struct {
		arg  string
		want bool
	}{
		{"FROM:<a@b@example.test>", true},
		{"FROM:<bad@@example.test>", true},
		{"from: <a@b@example.test> SIZE=10", true},
		{"FROM:<@relay.test:a@b@example.test>", true},
		{`FROM:<"a@b"@example.test>`, false},
		{`FROM:<"a\"@b"@example.test>`, false},
		{`FROM:<"a@b"@c@example.test>`, true},
		{"FROM:<a@example.test>", false},
		{"FROM:<>", false},
		{"FROM:<@relay.test:a@example.test>", false},
		{"FROM:<a@example.test> AUTH=<x@y@z>", false},
		{"FROM:a@b@example.test", true}, // go-smtp takes a path without brackets
		{"FROM:\t<a@b@example.test>", true},
		{"FROM:a@example.test SIZE=10", false},
		{`FROM:<"a@b@example.test>`, false},
		{"TO:<a@b@example.test>", false},
	} {
		if got := atInSenderDomain(tt.arg); got != tt.want {
			t.Errorf("atInSenderDomain(%q) = %v, want %v", tt.arg, got, tt.want)
		}
	}
}

// TestBadSenderSyntax: a reverse-path with an '@' in its domain is no
// address (go-smtp would hand it on as a valid quoted one); it is refused
// with 553 5.1.7 and the session goes on. The quoted form is accepted.
func TestBadSenderSyntax(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@b@example.org>", "553 5.1.7")
	r.cmd("MAIL FROM:<bad@@example.org>", "553 5.1.7")
	r.cmd("MAIL FROM:a@b@example.org", "553 5.1.7")
	r.cmd("MAIL FROM:\t<a@b@example.org>", "553 5.1.7")
	r.cmd(`MAIL FROM:<"a@b"@example.org>`, "250 2.1.0")
	r.cmd("RSET", "250")
	r.cmd("MAIL FROM:<a@example.org>", "250 2.1.0")
}

// TestUnknownParameters: a MAIL or RCPT parameter the server does not know
// gets 555 5.5.4 (RFC 5321 4.1.1.11, 4.2.3), not go-smtp's 500.
func TestUnknownParameters(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org> FOO=BAR", "555 5.5.4 Unknown MAIL FROM argument")
	r.cmd("MAIL FROM:<a@example.org>", "250 2.1.0")
	r.cmd("RCPT TO:<b@example.test> XYZ=1", "555 5.5.4 Unknown RCPT TO argument")
	r.cmd("RCPT TO:<b@example.test>", "250 2.1.5")
}

// TestDebugLogsDialog: at log.level debug every command and reply is
// logged (the quickstart config promises it), with AUTH's initial
// response and SASL responses hidden and the client's bytes made
// printable; at info none is.
func TestDebugLogsDialog(t *testing.T) {
	ts := startServer(t, testConfig(t), nil) // its logger is at debug
	r := newRaw(t, ts.addr(), 1)
	r.hello()
	r.cmd("AUTH PLAIN "+b64("\x00alice\x00secret"), "235")
	r.cmd("AUTH LOGIN", "503")                  // already authenticated
	r.cmd(b64("\x00bob\x00hunter2"), "500")     // a client pushing its credential anyway
	r.cmd("Dear John, the code is 1234", "500") // or message text
	r.cmd("NOOP \x7fodd", "250")
	r.cmd("MAIL FROM:<a@example.test>", "250")
	r.cmd("QUIT", "221")
	waitFor(t, func() bool { return strings.Contains(ts.logs.String(), `verb=QUIT`) })
	logs := ts.logs.String()
	for _, want := range []string{
		`msg=command`, `verb=EHLO arg=c.example.org`, `verb=AUTH arg="PLAIN [initial response hidden]"`,
		`verb=NOOP arg=?odd`, `verb=MAIL arg=FROM:<a@example.test>`,
		`msg=reply`, `line="235 2.7.0 Authentication succeeded"`, `line="250 2.1.0 Sender <a@example.test> OK"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("debug log lacks %q:\n%s", want, logs)
		}
	}
	cred := b64("\x00bob\x00hunter2")
	for _, secret := range []string{b64("\x00alice\x00secret"), cred[:6], strings.ToUpper(cred[:6]), "John", "JOHN", "1234"} {
		if strings.Contains(logs, secret) {
			t.Errorf("client data %q is in the log", secret)
		}
	}

	info := &logbuf.Buffer{}
	ts = startServer(t, testConfig(t), func(d *Deps) {
		d.Logger = slog.New(slog.NewTextHandler(info, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	r = newRaw(t, ts.addr(), 1)
	r.hello()
	r.cmd("QUIT", "221")
	waitFor(t, func() bool { return strings.Contains(info.String(), "msg=connect") })
	if l := info.String(); strings.Contains(l, "msg=command") || strings.Contains(l, "msg=reply") {
		t.Errorf("commands logged at info:\n%s", l)
	}
}

// TestTraceFieldsQuoted: what a client says reaches our Received field and
// our replies only in a form that cannot forge them: a quoted local part
// stays quoted in "for" (unquoted, `"bob; Mon, 1 Jan 2001 (x"@...` wrote a
// date and opened a comment that swallowed ours), and an EHLO name with a
// terminal escape, DEL or 8-bit bytes is echoed and recorded printable.
func TestTraceFieldsQuoted(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 1) // trusted: the test policy refuses ':' in a local part from others
	r.expect("220")
	ehlo := r.cmd("EHLO evil\x1b[31mred\x7f\xc2\x85x", "250")
	if first, _, _ := strings.Cut(ehlo, "\n"); first != "250-mx.example.test Hello evil?[31mred??x" {
		t.Errorf("EHLO reply %q", first)
	}
	rcpt := `"bob; Mon, 1 Jan 2001 00:00:00 +0000 (fake"@example.test`
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<"+rcpt+">", "250")
	r.cmd("DATA", "354")
	r.send(message("trace") + ".\r\n")
	id := strings.Fields(r.expect("250 2.0.0"))[2]
	rc, err := ts.q.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	head, _, _ := strings.Cut(string(b), "\r\n\r\n")
	if !strings.Contains(head, "Received: from evil[31mred?x (") || !strings.Contains(head, "\tfor <"+rcpt+">;\r\n") {
		t.Errorf("trace field:\n%s", head)
	}
	for _, c := range head {
		if c == 0x1b || c == 0x7f || c > 0x7e {
			t.Fatalf("control or 8-bit character %q in the header:\n%s", c, head)
		}
	}
}

// TestReceivedAfterHELO: a client that said HELO is received "with SMTP"
// (RFC 5321 4.4, RFC 3848; ESMTP is for EHLO), and its HELO name cannot
// open a quoted string or a comment that swallows the rest of the field.
func TestReceivedAfterHELO(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	send := func(hello string) string {
		r := newRaw(t, ts.addr(), 2)
		r.expect("220")
		r.cmd(hello, "250")
		r.cmd("MAIL FROM:<a@example.org>", "250")
		r.cmd("RCPT TO:<bob@example.test>", "250")
		r.cmd("DATA", "354")
		r.send("Subject: s\r\n\r\nbody\r\n.\r\n")
		return strings.Fields(r.expect("250 2.0.0"))[2]
	}
	checkReceivedProto(t, ts, send(`HELO "quoted\x`), "Received: from quotedx (unknown [127.0.0.2])\r\n\tby mx.example.test (Portcullis) with SMTP id")
	checkReceivedProto(t, ts, send("EHLO client.example.org"), "with ESMTP id")
	// RFC 6531 4.3: a transaction with SMTPUTF8 is UTF8SMTP.
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@example.org> SMTPUTF8", "250")
	r.cmd("RCPT TO:<bob@example.test>", "250")
	r.cmd("DATA", "354")
	r.send("Subject: s\r\n\r\nbody\r\n.\r\n")
	checkReceivedProto(t, ts, strings.Fields(r.expect("250 2.0.0"))[2], "with UTF8SMTP id")
}

// At debug level each reply line is a log line of its own, the STARTTLS
// line the guard adds after PIPELINING too: it shared PIPELINING's log
// line ("250-PIPELINING\r\n250-STARTTLS"), found against a real Postfix.
func TestDebugReplyLinesOneEach(t *testing.T) {
	cfg, _ := starttlsConfig(t)
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.expect("220")
	if !strings.Contains(r.cmd("EHLO c.example.org", "250"), "250-STARTTLS") {
		t.Fatal("STARTTLS not offered")
	}
	r.cmd("QUIT", "221")
	logs := ts.logs.String()
	for _, want := range []string{"msg=reply session=", "line=250-PIPELINING\n", "line=250-STARTTLS\n"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, `\r\n250-`) {
		t.Errorf("a log line holds two reply lines:\n%s", logs)
	}
}
