package smtpd

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestCommandSequence: commands out of order get 503 5.5.1 (RFC 5321
// 4.3.2), not go-smtp's 502 "not implemented"; a MAIL inside a transaction
// is refused and the transaction goes on with its first sender and
// recipients (RFC 5321 4.1.4); AUTH inside one is refused (RFC 4954 4).
func TestCommandSequence(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.expect("220")
	r.cmd("MAIL FROM:<a@example.org>", "503 5.5.1 ")
	r.cmd("AUTH PLAIN "+b64("\x00alice\x00secret"), "503 5.5.1 ")
	r.cmd("EHLO c.example.org", "250")
	r.cmd("RCPT TO:<bob@example.test>", "503 5.5.1 ")
	r.cmd("DATA", "503 5.5.1 ")
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("DATA", "503 5.5.1 ")
	r.cmd("VRFY bob", "502 5.5.1 Command not implemented") // our own 502 stays
	r.cmd("RCPT TO:<bob@example.test>", "250")
	r.cmd("MAIL FROM:<other@example.org>", "503 5.5.1 Nested MAIL command")
	r.cmd("MAIL FROM:<>", "503 5.5.1 Nested MAIL command")
	r.cmd("AUTH PLAIN "+b64("\x00alice\x00secret"), "503 5.5.1 AUTH not permitted during a mail transaction")
	r.cmd("DATA", "354")
	r.send(message("sequence") + ".\r\n")
	id := strings.Fields(r.expect("250 2.0.0"))[2]
	env, err := ts.q.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if env.From != "a@example.org" || len(env.Rcpts) != 1 || env.Client.Authenticated {
		t.Fatalf("envelope from %q, %d rcpts, authenticated %v", env.From, len(env.Rcpts), env.Client.Authenticated)
	}
	// After the transaction (and after RSET) both are allowed again.
	r.cmd("AUTH PLAIN "+b64("\x00alice\x00secret"), "235")
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RSET", "250")
	r.cmd("MAIL FROM:<b@example.org>", "250")
	r.cmd("QUIT", "221")
}

// TestBadBytesInCommands: a command line with a bare LF end, a bare CR or
// a NUL is refused (RFC 5321 2.3.8) before go-smtp parses it, and the
// session goes on.
func TestBadBytesInCommands(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	const refused = "500 5.5.2 Syntax error: bare CR, bare LF or NUL in command"
	for _, line := range []string{
		"NOOP\n",
		"MAIL FROM:<a@example.org>\n",
		"NOOP\rRSET\r\n",
		"EHLO c\x00.example.org\r\n",
		"MAIL FROM:<a\x00@example.org>\r\n",
		"MAIL FROM:<a@example.org>\r\n",
		"RCPT TO:<b\rob@example.test>\r\n",
		"RCPT TO:<bob@example.test>\x00\r\n",
		"RCPT TO:<bob@example.test>\r\r\n",
	} {
		t.Run(strings.NewReplacer("\r", `\r`, "\n", `\n`, "\x00", `\0`).Replace(line), func(t *testing.T) {
			r.send(line)
			got := r.reply()
			if strings.HasPrefix(line, "MAIL FROM:<a@example.org>\r") {
				if !strings.HasPrefix(got, "250") {
					t.Fatalf("clean MAIL: %q", got)
				}
				return
			}
			if got != refused {
				t.Fatalf("got %q, want %q", got, refused)
			}
		})
	}
	r.cmd("RCPT TO:<bob@example.test>", "250")
	r.cmd("DATA", "354")
	r.send(message("clean") + ".\r\n")
	id := strings.Fields(r.expect("250 2.0.0"))[2]
	env, err := ts.q.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if env.From != "a@example.org" || len(env.Rcpts) != 1 || env.Rcpts[0].Addr != "bob@example.test" {
		t.Fatalf("envelope %+v", env)
	}
}

// TestSMTPUTF8Addresses: a non-ASCII address needs MAIL FROM's SMTPUTF8
// parameter (RFC 6531 3.4; 553 5.6.7), else the queue would hold mail
// that delivery cannot send on without SMTPUTF8 and that bounces later.
func TestSMTPUTF8Addresses(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	const need = "553 5.6.7 Non-ASCII address requires the SMTPUTF8 parameter"
	r.cmd("MAIL FROM:<jörg@example.org>", need)
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<jürgen@example.test>", need)
	r.cmd("RCPT TO:<bob@example.test>", "250")
	r.cmd("RSET", "250")
	r.cmd("MAIL FROM:<jörg@example.org> SMTPUTF8", "250")
	r.cmd("RCPT TO:<jürgen@example.test>", "250")
	r.cmd("DATA", "354")
	r.send(message("utf8") + ".\r\n")
	id := strings.Fields(r.expect("250 2.0.0"))[2]
	env, err := ts.q.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if !env.SMTPUTF8 || env.Rcpts[0].Addr != "jürgen@example.test" {
		t.Fatalf("envelope SMTPUTF8 %v, rcpt %q", env.SMTPUTF8, env.Rcpts[0].Addr)
	}
}

// TestUnicodeRecipientDomain: a recipient domain sent in Unicode is queued
// in the A-label form the relay policy judged, so that delivery's routes
// (which match ASCII domains) find it; the sender's domain too, so that an
// ASCII local part at an IDN domain can go on without SMTPUTF8.
func TestUnicodeRecipientDomain(t *testing.T) {
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Policy = acceptAll{} })
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.cmd("MAIL FROM:<a@例え.test> SMTPUTF8", "250")
	r.cmd("RCPT TO:<jürgen@Bücher.example>", "250")
	r.cmd("RCPT TO:<u@ｅｘａｍｐｌｅ.test>", "250")
	r.cmd("RCPT TO:<plain@Example.test>", "250")
	r.cmd("DATA", "354")
	r.send(message("idn") + ".\r\n")
	id := strings.Fields(r.expect("250 2.0.0"))[2]
	env, err := ts.q.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rc := range env.Rcpts {
		got = append(got, rc.Addr)
	}
	want := []string{"jürgen@xn--bcher-kva.example", "u@example.test", "plain@Example.test"}
	if !slices.Equal(got, want) {
		t.Fatalf("queued recipients %q, want %q", got, want)
	}
	if env.From != "a@xn--r8jz45g.test" {
		t.Fatalf("queued sender %q, want a@xn--r8jz45g.test", env.From)
	}
}

// acceptAll is a relay policy that accepts every sender and recipient.
type acceptAll struct{}

func (acceptAll) Trusted(netip.Addr) bool                { return true }
func (acceptAll) CheckMail(Client, string) error         { return nil }
func (acceptAll) CheckRcpt(Client, string, string) error { return nil }
