package policy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/portcullis-mta/portcullis/core/smtperr"
)

// backend is a minimal go-smtp back end that asks the policy, so the
// parser is tested on exactly what go-smtp passes to Mail() and Rcpt().
type backend struct{ p *Policy }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String())
	if err != nil {
		return nil, err
	}
	return &session{p: b.p, c: Client{IP: ap.Addr()}}, nil
}

type session struct {
	p    *Policy
	c    Client
	from string
}

func toSMTP(err error) error {
	if err == nil {
		return nil
	}
	se := smtperr.As(err)
	var ec smtp.EnhancedCode
	fmt.Sscanf(se.Enhanced, "%d.%d.%d", &ec[0], &ec[1], &ec[2])
	return &smtp.SMTPError{Code: se.Code, EnhancedCode: ec, Message: se.Text}
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return toSMTP(s.p.CheckMail(s.c, from))
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	return toSMTP(s.p.CheckRcpt(s.c, s.from, to))
}
func (s *session) Data(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }
func (s *session) Reset()                 {}
func (s *session) Logout() error          { return nil }

// TestThroughGoSMTP sends the relay tricks over a real SMTP dialog. The
// client (127.0.0.1) is not in relay.networks here, so it is untrusted.
func TestThroughGoSMTP(t *testing.T) {
	srv := smtp.NewServer(backend{testPolicy(t, "")})
	srv.Domain = "mx.example.test"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	readReply := func() string {
		var last string
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			last = strings.TrimRight(line, "\r\n")
			if len(last) < 4 || last[3] != '-' {
				return last
			}
		}
	}
	send := func(cmd string) string {
		if _, err := io.WriteString(conn, cmd+"\r\n"); err != nil {
			t.Fatal(err)
		}
		return readReply()
	}
	readReply() // greeting
	send("EHLO client.test")
	if got := send("MAIL FROM:<>"); !strings.HasPrefix(got, "250") {
		t.Fatalf("MAIL FROM:<> = %q", got)
	}
	cases := []struct{ rcpt, want string }{
		{"<u@example.test>", "250 "},
		{"<U@Example.TEST>", "250 "},
		{"<@example.test:u@victim.example>", "554 5.7.1 <u@victim.example>: Relay access denied"},
		{"<@a.test,@example.test:u@victim.example>", "554 5.7.1 <u@victim.example>: Relay access denied"},
		{"<@victim.example:u@example.test>", "250 "}, // route ignored: u@example.test is ours
		// A quoted local part that go-smtp's unquoting turns into a route.
		{`<"@victim.example:u"@example.test>`, "553 5.1.3 <\"@victim.example:u\"@example.test>: Recipient address rejected: routing characters in local part"},
		{"<u%victim.example@example.test>", "553 5.1.3 <u%victim.example@example.test>: Recipient address rejected: routing characters in local part"},
		{`<"u%victim.example"@example.test>`, "553 5.1.3 <u%victim.example@example.test>: Recipient address rejected: routing characters in local part"},
		{"<u%victim.example@[192.0.2.1]>", "554 5.7.1 <u%victim.example@[192.0.2.1]>: Relay access denied"},
		{"<victim.example!u@example.test>", "553 5.1.3 <victim.example!u@example.test>: Recipient address rejected: routing characters in local part"},
		{"<victim.example!u>", "501 "}, // go-smtp: no @domain
		{`<"u%victim.example">`, "501 "},
		{`<"u@victim.example"@example.test>`, "553 5.1.3 <\"u@victim.example\"@example.test>: Recipient address rejected: routing characters in local part"},
		{`<"u@victim.example">`, "501 "},
		{"<u@victim.example@example.test>", "553 5.1.3 <\"u@victim.example\"@example.test>: Recipient address rejected: routing characters in local part"},
		{"<u@example.test@victim.example>", "554 5.7.1 <\"u@example.test\"@victim.example>: Relay access denied"},
		{"<u@victim.example.>", "553 5.1.3 <u@victim.example.>: Recipient address rejected: bad address syntax"},
		{"<u@example.test.>", "553 5.1.3 <u@example.test.>: Recipient address rejected: bad address syntax"},
		{"<u@[127.0.0.1]>", "554 5.7.1 <u@[127.0.0.1]>: Relay access denied"},
		{"<u@VICTIM.EXAMPLE>", "554 5.7.1 <u@VICTIM.EXAMPLE>: Relay access denied"},
		{`<"a b"@example.test>`, "250 "},
	}
	for _, c := range cases {
		t.Run(c.rcpt, func(t *testing.T) {
			if got := send("RCPT TO:" + c.rcpt); !strings.HasPrefix(got, c.want) {
				t.Errorf("RCPT TO:%s = %q, want %q", c.rcpt, got, c.want)
			}
		})
	}
	send("QUIT")
}
