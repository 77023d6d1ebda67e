package delivery

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one message a peer accepted.
type received struct {
	from     string
	mailOpts smtp.MailOptions
	rcpts    []string
	rcptOpts []smtp.RcptOptions
	data     string
	tls      bool
	user     string
}

// peer is an in-process SMTP server (go-smtp) on 127.0.0.1:0 playing a
// next hop: a downstream server, a smarthost, an MX, or a sender's server
// that receives our DSNs.
type peer struct {
	t       *testing.T
	addr    string
	srv     *smtp.Server
	accepts atomic.Int32
	authOK  atomic.Int32
	authTry atomic.Int32

	mu     sync.Mutex
	msgs   []received
	rcpt   func(to string) error // nil: accept all
	mechs  []string              // AUTH mechanisms offered; nil: no AUTH
	user   string
	pass   string
	hold   chan struct{} // non-nil: Data waits for it to close
	inData int           // sessions waiting on hold
}

type peerOpt func(*peer)

func withTLS(cert tls.Certificate) peerOpt {
	return func(p *peer) { p.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}} }
}

func withAuth(mech string) peerOpt {
	return func(p *peer) { p.mechs, p.user, p.pass = []string{mech}, "isp-user", "s3cret pass" }
}

func newPeer(t *testing.T, opts ...peerOpt) *peer {
	t.Helper()
	p := &peer{t: t}
	p.srv = smtp.NewServer(p)
	p.srv.Domain = "peer.test"
	p.srv.EnableDSN = true
	p.srv.ReadTimeout = 10 * time.Second
	p.srv.WriteTimeout = 10 * time.Second
	p.srv.ErrorLog = discardLogger{}
	for _, o := range opts {
		o(p)
	}
	listen := "127.0.0.1:0"
	if p.addr != "" {
		listen = p.addr // set by an option
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	go p.srv.Serve(countListener{ln, &p.accepts})
	t.Cleanup(func() { p.srv.Close() })
	return p
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

type countListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func (p *peer) setRcpt(f func(string) error) { p.mu.Lock(); p.rcpt = f; p.mu.Unlock() }

func (p *peer) messages() []received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]received(nil), p.msgs...)
}

func (p *peer) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &peerSession{p: p, conn: c, tls: isTLS}, nil
}

type peerSession struct {
	p    *peer
	conn *smtp.Conn
	tls  bool
	user string
	cur  received
}

func (s *peerSession) Reset()        { s.cur = received{} }
func (s *peerSession) Logout() error { return nil }

func (s *peerSession) AuthMechanisms() []string { return s.p.mechs }

func (s *peerSession) Auth(mech string) (sasl.Server, error) {
	s.p.authTry.Add(1)
	check := func(user, pass string) error {
		if user != s.p.user || pass != s.p.pass {
			return smtp.ErrAuthFailed // 535 5.7.8 (RFC 4954 6)
		}
		s.user = user
		s.p.authOK.Add(1)
		return nil
	}
	switch mech {
	case "PLAIN":
		return sasl.NewPlainServer(func(_, u, pw string) error { return check(u, pw) }), nil
	case "LOGIN":
		return &loginServer{check: check}, nil
	case "CRAM-MD5":
		return &cramServer{pass: s.p.pass, check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *peerSession) Mail(from string, opts *smtp.MailOptions) error {
	if len(s.p.mechs) > 0 && s.user == "" {
		return smtp.ErrAuthRequired
	}
	_, s.cur.tls = s.conn.TLSConnectionState()
	s.cur.from, s.cur.user = from, s.user
	if opts != nil {
		s.cur.mailOpts = *opts
	}
	return nil
}

func (s *peerSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	s.p.mu.Lock()
	f := s.p.rcpt
	s.p.mu.Unlock()
	if f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	s.cur.rcpts = append(s.cur.rcpts, to)
	if opts != nil {
		s.cur.rcptOpts = append(s.cur.rcptOpts, *opts)
	}
	return nil
}

func (s *peerSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if h := s.p.hold; h != nil {
		s.p.mu.Lock()
		s.p.inData++
		s.p.mu.Unlock()
		<-h
	}
	s.cur.data = string(b)
	s.p.mu.Lock()
	s.p.msgs = append(s.p.msgs, s.cur)
	s.p.mu.Unlock()
	return nil
}

// loginServer is the server side of LOGIN, which go-sasl lacks.
type loginServer struct {
	check func(u, p string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if len(resp) > 0 { // initial response carries the user name
			l.user, l.step = string(resp), 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(resp)
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.user, string(resp))
}

// cramServer is the server side of CRAM-MD5 (RFC 2195).
type cramServer struct {
	pass      string
	check     func(u, p string) error
	challenge string
}

func (c *cramServer) Next(resp []byte) ([]byte, bool, error) {
	if c.challenge == "" {
		c.challenge = "<1896.697170952@peer.test>"
		return []byte(c.challenge), false, nil
	}
	user, digest, _ := strings.Cut(string(resp), " ")
	mac := hmac.New(md5.New, []byte(c.pass))
	mac.Write([]byte(c.challenge))
	if hex.EncodeToString(mac.Sum(nil)) != digest {
		return nil, true, errors.New("bad digest")
	}
	return nil, true, c.check(user, c.pass)
}

// testCert makes a self-signed certificate for the names and 127.0.0.1, and
// the pool that trusts it.
func testCert(t *testing.T, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func dataStarted(p *peer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inData > 0
}

func copyAll(w io.Writer, r io.Reader) (int64, error) { return io.Copy(w, r) }
