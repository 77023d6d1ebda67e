package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// TestOB25Example runs examples/ob25/portcullis.yaml, set up as its comments
// say (a self-signed certificate, a users file, the ISP password file, a
// DKIM key from `dkim keygen`), with only its addresses moved to loopback:
// staff mail sent on the submission port with STARTTLS and AUTH, and the
// scanner's from its relay.networks address, goes to the ISP smarthost
// over verified TLS with the ISP login and a DKIM signature; inbound mail
// goes to the inside server; MAIL before AUTH on submission and relaying by
// a stranger are refused.
func TestOB25Example(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "isp-ca.pem")
	isp := startISP(t, caFile, "office@isp.example", "isp secret")
	inside := startNextHop(t, false)
	dns := dnstest.New(t)

	text, err := os.ReadFile("../../examples/ob25/portcullis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfgText := strings.NewReplacer(
		`"0.0.0.0:25"`, `"127.0.0.1:0"`,
		`"0.0.0.0:587"`, `"127.0.0.1:0"`,
		`"192.168.1.10:25"`, `"`+inside.addr+`"`,
		`"smtp.isp.example:587"`, `"`+isp.addr+`"`,
	).Replace(string(text))
	for _, moved := range []string{inside.addr, isp.addr} {
		if strings.Count(cfgText, moved) != 1 {
			t.Fatalf("the example no longer has the address this test moves to %s", moved)
		}
	}
	cfgText += "dns: {servers: [\"" + dns.Addr + "\"]}\n"
	cfg := writeTestFile(t, filepath.Join(dir, "portcullis.yaml"), cfgText)

	// The setup steps of the example's comments.
	writeSelfSigned(t, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), "mx.office.example")
	hash, err := bcrypt.GenerateFromPassword([]byte("alice pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "users.txt"), "alice:"+string(hash)+"\n")
	writeTestFile(t, filepath.Join(dir, "isp.pass"), "isp secret\n")
	for _, f := range []string{"isp.pass", "key.pem", "users.txt"} { // chmod 600, as the comments say
		if err := os.Chmod(filepath.Join(dir, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bin := portcullisBinary(t)
	if out, err := exec.Command(bin, "dkim", "keygen", "office.example", "s2026", "-c", cfg).CombinedOutput(); err != nil {
		t.Fatalf("dkim keygen: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "check", "-c", cfg).CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "ok: ") {
		t.Fatalf("check: %v\n%s", err, out)
	}

	t.Setenv("SSL_CERT_FILE", caFile) // the README's way to trust a private CA
	g := startGateway(t, cfg)
	// startGateway returns once the first listener is up; the second may
	// log its line a moment later.
	listening := regexp.MustCompile(`msg=listening listener=submission address=(\S+)`)
	waitUntil(t, "the submission listener", func() bool { return listening.MatchString(g.logs()) })
	submission := listening.FindStringSubmatch(g.logs())[1]

	t.Run("staff on submission", func(t *testing.T) {
		c := dialClient(t, submission, &tls.Config{InsecureSkipVerify: true})
		if r := sendFrom(c, "alice@office.example", nil, "friend@example.net", "Subject: before auth\r\n\r\nx\r\n", false); r.code != 530 {
			t.Errorf("MAIL before AUTH: %v, want 530", r)
		}
		if err := c.Auth(sasl.NewPlainClient("", "alice", "alice pw")); err != nil {
			t.Fatal(err)
		}
		msg := "From: Alice <alice@office.example>\r\nTo: friend@example.net\r\nSubject: from alice\r\n\r\nhello\r\n"
		if r := sendFrom(c, "alice@office.example", nil, "friend@example.net", msg, false); r.code != 250 {
			t.Fatalf("staff message: %v", r)
		}
		got := isp.waitFor(t, "from alice")
		if got.user != "office@isp.example" || !got.tls {
			t.Errorf("at the ISP: user %q, TLS %v; want the route's login over TLS", got.user, got.tls)
		}
		head, _, _ := strings.Cut(got.data, "\r\n\r\n")
		if !regexp.MustCompile(`(?m)^DKIM-Signature:(.*\r\n[ \t])*.*\bd=office\.example;(.*\r\n[ \t])*.*\bs=s2026;`).MatchString(head) {
			t.Errorf("not signed for office.example with selector s2026:\n%s", head)
		}
	})
	t.Run("scanner by address", func(t *testing.T) {
		c := dialClient(t, g.addr, nil)
		msg := "From: scanner@office.example\r\nTo: client@example.net\r\nSubject: scan 001\r\n\r\npdf\r\n"
		if r := sendFrom(c, "scanner@office.example", nil, "client@example.net", msg, false); r.code != 250 {
			t.Fatalf("scanner message: %v", r)
		}
		if got := isp.waitFor(t, "scan 001"); got.user != "office@isp.example" {
			t.Errorf("at the ISP as %q", got.user)
		}
	})
	t.Run("inbound", func(t *testing.T) {
		msg := "From: someone@example.net\r\nTo: bob@office.example\r\nSubject: inbound\r\n\r\nhi\r\n"
		c := dialClient(t, g.addr, nil)
		if r := sendFrom(c, "someone@example.net", nil, "bob@office.example", msg, false); r.code != 250 {
			t.Fatalf("inbound message: %v", r)
		}
		got := inside.waitFor(t, "the inbound message", bySubject("inbound"))
		if m := findSubject(got, "inbound"); m.rcpts[0] != "bob@office.example" {
			t.Errorf("inside got it for %v", m.rcpts)
		}
		if isp.has("inbound") {
			t.Error("mail for office.example went to the ISP")
		}
	})
	t.Run("no open relay on the MX port", func(t *testing.T) {
		// The scanner's address is this test's too (loopback): so ask
		// `scan`, which judges --rcpt as for a client from --ip.
		out, _ := exec.Command(bin, "scan", "-c", cfg, "--ip", "203.0.113.9", "--from", "x@example.net",
			"--rcpt", "y@example.org", writeTestFile(t, filepath.Join(dir, "relay.eml"), "Subject: relay\r\n\r\nx\r\n")).CombinedOutput()
		if !strings.Contains(string(out), "554 5.7.1 <y@example.org>: Relay access denied") {
			t.Errorf("a stranger relaying through the MX port:\n%s", out)
		}
	})
}

// dialClient opens a session, with STARTTLS when tc is set, and says EHLO.
func dialClient(t *testing.T, addr string, tc *tls.Config) *smtp.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := smtp.NewClient(conn)
	if tc != nil {
		if c, err = smtp.NewClientStartTLS(conn, tc); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("pc1.office.example"); err != nil {
		t.Fatal(err)
	}
	return c
}

// writeSelfSigned writes a self-signed certificate for name and its key,
// as the example's openssl line does.
func writeSelfSigned(t *testing.T, certFile, keyFile, name string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeTestFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
}

// ispHost is an in-process ISP submission smarthost: STARTTLS, then AUTH
// PLAIN or LOGIN with one account, required before MAIL.
type ispHost struct {
	addr       string
	user, pass string

	mu   sync.Mutex
	msgs []ispMsg
}

type ispMsg struct {
	hopMsg
	user string
	tls  bool
}

// startISP starts the smarthost with a certificate for 127.0.0.1, whose
// CA it writes to caFile.
func startISP(t *testing.T, caFile, user, pass string) *ispHost {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile, "smtp.isp.example")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(certFile)
	writeTestFile(t, caFile, string(b))
	h := &ispHost{user: user, pass: pass}
	srv := smtp.NewServer(h)
	srv.Domain = "smtp.isp.example"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.ErrorLog = quietLog{}
	h.addr = serveSMTP(t, srv)
	return h
}

func (h *ispHost) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &ispSession{h: h, conn: c}, nil
}

func (h *ispHost) has(subject string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if m.header("Subject") == subject {
			return true
		}
	}
	return false
}

func (h *ispHost) waitFor(t *testing.T, subject string) ispMsg {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		h.mu.Lock()
		for _, m := range h.msgs {
			if m.header("Subject") == subject {
				h.mu.Unlock()
				return m
			}
		}
		h.mu.Unlock()
	}
	t.Fatalf("the ISP never received %q", subject)
	return ispMsg{}
}

type ispSession struct {
	h    *ispHost
	conn *smtp.Conn
	user string
	cur  ispMsg
}

func (s *ispSession) Reset()        { s.cur = ispMsg{} }
func (s *ispSession) Logout() error { return nil }

func (s *ispSession) AuthMechanisms() []string {
	if _, ok := s.conn.TLSConnectionState(); !ok {
		return nil // as Postfix's smtpd_tls_auth_only
	}
	return []string{sasl.Plain, sasl.Login}
}

func (s *ispSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != s.h.user || pass != s.h.pass {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, u, p string) error { return check(u, p) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *ispSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	_, s.cur.tls = s.conn.TLSConnectionState()
	s.cur.from, s.cur.user = from, s.user
	return nil
}

func (s *ispSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.rcpts = append(s.cur.rcpts, to)
	return nil
}

func (s *ispSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = string(b)
	s.h.mu.Lock()
	s.h.msgs = append(s.h.msgs, s.cur)
	s.h.mu.Unlock()
	return nil
}

// loginServer is the server side of AUTH LOGIN (draft-murchison-sasl-login).
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(resp)
		l.step++
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}
