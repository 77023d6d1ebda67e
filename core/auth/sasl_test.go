package auth

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	netsmtp "net/smtp"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// result is one finished exchange as seen by the done callback.
type result struct {
	user string
	err  error
}

// authBackend is a go-smtp back end whose sessions authenticate against
// Users, the way core/smtpd is expected to: Lockout checked first, done
// feeding it.
type authBackend struct {
	users   *Users
	lockout *Lockout
	mu      sync.Mutex
	results []result
}

func (b *authBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String())
	if err != nil {
		return nil, err
	}
	return &authSession{b: b, ip: ap.Addr()}, nil
}

type authSession struct {
	b  *authBackend
	ip netip.Addr
}

func (s *authSession) AuthMechanisms() []string { return s.b.users.Mechanisms() }

func (s *authSession) Auth(mech string) (sasl.Server, error) {
	if s.b.lockout.Locked(s.ip) {
		return nil, SMTPError(ErrLockedOut)
	}
	srv, err := s.b.users.NewServer(mech, "mx.example.test", func(user string, err error) {
		s.b.mu.Lock()
		s.b.results = append(s.b.results, result{user, err})
		s.b.mu.Unlock()
		if err != nil {
			s.b.lockout.Fail(s.ip, user)
		} else {
			s.b.lockout.Succeed(s.ip, user)
		}
	})
	if err != nil {
		return nil, SMTPError(err)
	}
	return ForGoSMTP(srv), nil
}

func (s *authSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *authSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *authSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
func (s *authSession) Reset()                               {}
func (s *authSession) Logout() error                        { return nil }

func startServer(t *testing.T) (string, *authBackend) {
	t.Helper()
	be := &authBackend{users: loadFixture(t), lockout: NewLockout(3, time.Minute, time.Minute, nil)}
	srv := smtp.NewServer(be)
	srv.Domain = "mx.example.test"
	srv.AllowInsecureAuth = true // loopback test; TLS is the listener's business
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), be
}

// goSMTPAuth authenticates with go-smtp's client and a go-sasl client.
func goSMTPAuth(t *testing.T, addr string, c sasl.Client) error {
	t.Helper()
	cl, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	return cl.Auth(c)
}

// netSMTPAuth authenticates with the standard library's client.
func netSMTPAuth(t *testing.T, addr string, a netsmtp.Auth) error {
	t.Helper()
	cl, err := netsmtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	return cl.Auth(a)
}

func replyOf(err error) string {
	if err == nil {
		return "ok"
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		ec := se.EnhancedCode
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, ec[0], ec[1], ec[2], se.Message)
	}
	var te *textproto.Error // net/smtp
	if errors.As(err, &te) {
		return fmt.Sprintf("%d %s", te.Code, te.Msg)
	}
	return err.Error()
}

func TestMechanismsWithRealClients(t *testing.T) {
	addr, be := startServer(t)
	const bad = "535 5.7.8 Authentication credentials invalid"
	cases := []struct {
		name string
		auth func() error
		want string
		user string // as reported to done
	}{
		{"plain ok", func() error { return goSMTPAuth(t, addr, sasl.NewPlainClient("", "alice", "correct horse")) }, "ok", "alice"},
		{"plain identity same", func() error { return goSMTPAuth(t, addr, sasl.NewPlainClient("bob", "bob", "s3cret:with:colons")) }, "ok", "bob"},
		{"plain proxy identity", func() error { return goSMTPAuth(t, addr, sasl.NewPlainClient("alice", "bob", "s3cret:with:colons")) }, bad, "bob"},
		{"plain bad password", func() error { return goSMTPAuth(t, addr, sasl.NewPlainClient("", "alice", "wrong")) }, bad, "alice"},
		{"plain unknown user", func() error { return goSMTPAuth(t, addr, sasl.NewPlainClient("", "mallory", "x")) }, bad, "mallory"},
		{"plain {plain} user", func() error { return goSMTPAuth(t, addr, sasl.NewPlainClient("", "carol", "tanstaaftanstaaf")) }, "ok", "carol"},
		{"login ok", func() error { return goSMTPAuth(t, addr, sasl.NewLoginClient("alice", "correct horse")) }, "ok", "alice"},
		{"login bad password", func() error { return goSMTPAuth(t, addr, sasl.NewLoginClient("alice", "nope")) }, bad, "alice"},
		{"login unknown user", func() error { return goSMTPAuth(t, addr, sasl.NewLoginClient("mallory", "x")) }, bad, "mallory"},
		{"net/smtp PLAIN", func() error {
			return netSMTPAuth(t, addr, netsmtp.PlainAuth("", "bob", "s3cret:with:colons", "127.0.0.1"))
		}, "ok", "bob"},
		{"cram-md5 ok", func() error { return netSMTPAuth(t, addr, netsmtp.CRAMMD5Auth("carol", "tanstaaftanstaaf")) }, "ok", "carol"},
		{"cram-md5 bad secret", func() error { return netSMTPAuth(t, addr, netsmtp.CRAMMD5Auth("carol", "tanstaaf")) }, bad, "carol"},
		{"cram-md5 bcrypt user", func() error { return netSMTPAuth(t, addr, netsmtp.CRAMMD5Auth("alice", "correct horse")) }, bad, "alice"},
		{"cram-md5 unknown user", func() error { return netSMTPAuth(t, addr, netsmtp.CRAMMD5Auth("mallory", "x")) }, bad, "mallory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			be.mu.Lock()
			be.results = nil
			be.mu.Unlock()
			be.lockout = NewLockout(3, time.Minute, time.Minute, nil)
			if got := replyOf(c.auth()); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			be.mu.Lock()
			defer be.mu.Unlock()
			if len(be.results) != 1 || be.results[0].user != c.user || (be.results[0].err == nil) != (c.want == "ok") {
				t.Errorf("done calls %+v, want one for %q", be.results, c.user)
			}
		})
	}
}

func TestLockoutOverSMTP(t *testing.T) {
	addr, be := startServer(t)
	for i := range 3 {
		if got := replyOf(goSMTPAuth(t, addr, sasl.NewPlainClient("", "alice", "guess"))); !strings.HasPrefix(got, "535") {
			t.Fatalf("attempt %d: %q", i, got)
		}
	}
	got := replyOf(goSMTPAuth(t, addr, sasl.NewPlainClient("", "alice", "correct horse")))
	if got != "454 4.7.0 Too many failed authentications, try again later" {
		t.Errorf("locked client got %q", got)
	}
	if !be.lockout.Locked(netip.MustParseAddr("127.0.0.1")) {
		t.Error("not locked")
	}
}

// TestServersDirect drives Next by hand for what real clients never send.
func TestServersDirect(t *testing.T) {
	u := loadFixture(t)
	type step struct {
		resp      []byte
		challenge string
		done      bool
		err       error
	}
	cases := []struct {
		mech  string
		steps []step
	}{
		{"LOGIN", []step{{nil, "Username:", false, nil}, {[]byte("alice"), "Password:", false, nil},
			{[]byte("correct horse"), "", true, nil}, {[]byte("again"), "", true, sasl.ErrUnexpectedClientResponse}}},
		{"login", []step{{[]byte("alice"), "Password:", false, nil}, {[]byte("x"), "", true, ErrInvalidCredentials}}},
		{"CRAM-MD5", []step{{[]byte("unexpected initial response"), "", true, ErrMalformed}}},
		{"CRAM-MD5", []step{{nil, "<", false, nil}, {[]byte("carolnodigest"), "", true, ErrMalformed}}},
		{"CRAM-MD5", []step{{nil, "<", false, nil}, {[]byte("carol zz"), "", true, ErrMalformed}}},
		{"CRAM-MD5", []step{{nil, "<", false, nil}, {[]byte("carol 00112233445566778899aabbccddeeff"), "", true, ErrInvalidCredentials}}},
	}
	for _, c := range cases {
		t.Run(c.mech, func(t *testing.T) {
			calls := 0
			s, err := u.NewServer(c.mech, "mx.example.test", func(string, error) { calls++ })
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range c.steps {
				ch, done, err := s.Next(st.resp)
				if !strings.HasPrefix(string(ch), st.challenge) || done != st.done || !errors.Is(err, st.err) {
					t.Fatalf("step %d: got %q %v %v; want %q %v %v", i, ch, done, err, st.challenge, st.done, st.err)
				}
			}
			if calls != 1 {
				t.Errorf("done called %d times, want 1", calls)
			}
		})
	}
	if _, err := u.NewServer("DIGEST-MD5", "h", nil); err != ErrUnknownMechanism {
		t.Errorf("unknown mechanism: %v", err)
	}
	s, _ := u.NewServer(CramMD5, "mx.example.test", nil)
	ch, _, _ := s.Next(nil)
	if !strings.HasPrefix(string(ch), "<") || !strings.HasSuffix(string(ch), "@mx.example.test>") {
		t.Errorf("CRAM-MD5 challenge %q is not <random.time@host>", ch)
	}
}

// TestPlainMalformedCallsDone: NewServer promises done exactly once when
// the exchange ends. A PLAIN message without exactly two NULs (RFC 4616 2)
// ended in go-sasl without done (so without the log line and lockout
// count the caller puts there) and with an error that is not an
// *smtperr.Error.
func TestPlainMalformedCallsDone(t *testing.T) {
	u := loadFixture(t)
	for _, msg := range []string{"", "alice", "alice\x00correct horse", "\x00alice\x00correct horse\x00", "\x00alice\x00pass\x00word"} {
		t.Run(msg, func(t *testing.T) {
			var calls []error
			s, err := u.NewServer(Plain, "mx.example.test", func(_ string, err error) { calls = append(calls, err) })
			if err != nil {
				t.Fatal(err)
			}
			_, done, err := s.Next([]byte(msg))
			if !done || !errors.Is(err, ErrMalformed) {
				t.Errorf("Next = done %v, %v; want done, ErrMalformed", done, err)
			}
			if len(calls) != 1 || !errors.Is(calls[0], ErrMalformed) {
				t.Errorf("done calls %v, want one with ErrMalformed", calls)
			}
			if _, _, err := s.Next([]byte("\x00alice\x00correct horse")); err == nil {
				t.Error("a finished exchange accepted another response")
			}
		})
	}
}

// TestCramMD5OnlyPlainUsers: CRAM-MD5 needs the shared secret, which only
// {plain} users have. For a bcrypt user or an unknown name Secret returns
// "" and false, and the HMAC is still computed (so that the time taken
// does not tell which names exist), keyed by "": anyone who keys their
// answer the same way must still be refused, or every bcrypt account and
// any made-up name would open with a digest computable from the
// challenge alone.
func TestCramMD5OnlyPlainUsers(t *testing.T) {
	u := loadFixture(t)
	answer := func(user, key string) ([]result, error) {
		t.Helper()
		var calls []result
		s, err := u.NewServer(CramMD5, "mx.example.test", func(user string, err error) { calls = append(calls, result{user, err}) })
		if err != nil {
			t.Fatal(err)
		}
		ch, done, err := s.Next(nil)
		if done || err != nil {
			t.Fatalf("challenge: done %v, %v", done, err)
		}
		mac := hmac.New(md5.New, []byte(key))
		mac.Write(ch)
		_, done, err = s.Next([]byte(user + " " + hex.EncodeToString(mac.Sum(nil))))
		if !done {
			t.Fatalf("%s: exchange not done after the answer", user)
		}
		return calls, err
	}
	for _, user := range []string{"alice", "bob", "mallory"} {
		calls, err := answer(user, "")
		if !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("CRAM-MD5 as %q with an empty-key digest: %v, want ErrInvalidCredentials", user, err)
		}
		if len(calls) != 1 || !errors.Is(calls[0].err, ErrInvalidCredentials) {
			t.Errorf("CRAM-MD5 as %q: done calls %v, want one failure", user, calls)
		}
	}
	// The {plain} user gets in with the secret, and only with it.
	if calls, err := answer("carol", "tanstaaftanstaaf"); err != nil || len(calls) != 1 || calls[0].err != nil || calls[0].user != "carol" {
		t.Errorf("carol with her secret: %v, done calls %v", err, calls)
	}
	if _, err := answer("carol", ""); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("carol with an empty-key digest: %v", err)
	}
}
