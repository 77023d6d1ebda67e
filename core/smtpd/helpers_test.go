package smtpd

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
	"github.com/portcullis-mta/portcullis/core/smtperr"

	"github.com/portcullis-mta/portcullis/core/internal/logbuf"
)

// testPolicy is a strict relay policy for the dialog tests: local domains
// from anyone, anything from trusted networks or authenticated users.
type testPolicy struct {
	trusted []netip.Prefix
	local   []string
}

func (p *testPolicy) Trusted(ip netip.Addr) bool {
	for _, n := range p.trusted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func (p *testPolicy) CheckMail(c Client, from string) error { return nil }

func (p *testPolicy) CheckRcpt(c Client, from, rcpt string) error {
	if p.Trusted(c.IP) || c.Authenticated {
		return nil
	}
	local, domain, ok := strings.Cut(rcpt, "@")
	for _, d := range p.local {
		if ok && strings.EqualFold(domain, d) && !strings.ContainsAny(local, "%!@\":") {
			return nil
		}
	}
	return smtperr.New(554, "5.7.1", "<"+rcpt+">: Relay access denied")
}

var errTestMalformed = smtperr.New(501, "5.5.2", "Cannot decode response")

// testAuth knows one PLAIN user; the real mechanisms are core/auth's.
type testAuth struct {
	mu       sync.Mutex
	failures map[netip.Addr]int
	limit    int
}

func (a *testAuth) Mechanisms() []string { return []string{sasl.Plain} }

func (a *testAuth) NewServer(mech string, done func(string, error)) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if identity == "malformed" { // stands in for core/auth's ErrMalformed
			done("", errTestMalformed)
			return errTestMalformed
		}
		if user == "alice" && pass == "secret" {
			done(user, nil)
			return nil
		}
		done(user, io.ErrUnexpectedEOF)
		return io.ErrUnexpectedEOF // any error: the session must not show it
	}), nil
}

func (a *testAuth) Locked(ip netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.limit > 0 && a.failures[ip] >= a.limit
}

func (a *testAuth) Failure(ip netip.Addr, _ string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failures == nil {
		a.failures = map[netip.Addr]int{}
	}
	a.failures[ip]++
	return a.failures[ip] == a.limit
}

func (a *testAuth) Success(netip.Addr, string) {}

// testConfig is a gateway for example.test trusting only 127.0.0.1.
func testConfig(t testing.TB) *config.Config {
	cfg := config.Defaults()
	cfg.Hostname = "mx.example.test"
	cfg.Listeners = []config.Listener{{Name: "mx", Address: "127.0.0.1:0", TLS: "none", Auth: "optional"}}
	cfg.Relay.Domains = []string{"example.test"}
	cfg.Relay.Networks = []config.Prefixes{{Prefix: netip.MustParsePrefix("127.0.0.1/32"), Text: "127.0.0.1/32"}}
	cfg.Limits.CommandTimeout = config.Duration(10 * time.Second)
	cfg.Limits.DataTimeout = config.Duration(10 * time.Second)
	return &cfg
}

// testServer is a running Server with a real queue in a temp directory.
type testServer struct {
	*Server
	q, quar *queue.Dir
	deps    Deps
	logs    *logbuf.Buffer
}

func startServer(t testing.TB, cfg *config.Config, mutate func(*Deps)) *testServer {
	t.Helper()
	ts, err := tryStartServer(t, cfg, mutate)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// tryStartServer is startServer for a test that handles a refused start
// itself (a listener that cannot bind): it returns Start's error, with
// nothing left open.
func tryStartServer(t testing.TB, cfg *config.Config, mutate func(*Deps)) (*testServer, error) {
	t.Helper()
	q, err := queue.Open(t.TempDir(), queue.Options{Poll: -1, Intake: true}) // as the daemon opens it
	if err != nil {
		t.Fatal(err)
	}
	quar, err := queue.Open(t.TempDir(), queue.Options{Poll: -1})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	d := Deps{
		Config: cfg, Queue: q, Quarantine: quar,
		Policy: &testPolicy{trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, local: cfg.Relay.Domains},
		Auth:   &testAuth{limit: 3},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mutate != nil {
		mutate(&d)
	}
	s, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		ctx, cancel := contextWithTimeout(5 * time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		q.Close()
		quar.Close()
		return nil, err
	}
	t.Cleanup(func() {
		ctx, cancel := contextWithTimeout(5 * time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		q.Close()
		quar.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &testServer{Server: s, q: q, quar: quar, deps: d, logs: logs}, nil
}

func (ts *testServer) addr() string { return ts.Addr("mx").String() }

func (ts *testServer) queued(t testing.TB) []*queue.Envelope {
	t.Helper()
	envs, err := ts.q.List()
	if err != nil {
		t.Fatal(err)
	}
	return envs
}

// dialFrom connects from local address 127.0.0.N.
func dialFrom(t testing.TB, addr string, n int) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawClient scripts a dialog byte by byte.
type rawClient struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func newRaw(t testing.TB, addr string, n int) *rawClient {
	c := dialFrom(t, addr, n)
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawClient) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatalf("write %q: %v", s, err)
	}
}

// reply reads one whole (possibly multi-line) reply.
func (r *rawClient) reply() string {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var all []string
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("reading reply after %q: %v", all, err)
		}
		all = append(all, strings.TrimRight(line, "\r\n"))
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(all, "\n")
		}
	}
}

// expect reads a reply and checks its start.
func (r *rawClient) expect(prefix string) string {
	r.t.Helper()
	got := r.reply()
	if !strings.HasPrefix(got, prefix) {
		r.t.Fatalf("got reply %q, want %q...", got, prefix)
	}
	return got
}

// cmd sends a line and checks the reply.
func (r *rawClient) cmd(line, prefix string) string {
	r.t.Helper()
	r.send(line + "\r\n")
	return r.expect(prefix)
}

// hello reads the greeting and says EHLO as c.example.org.
func (r *rawClient) hello() {
	r.t.Helper()
	r.expect("220")
	r.cmd("EHLO c.example.org", "250")
}

// toData opens a transaction from a@example.org to bob@example.test and
// gets the 354.
func (r *rawClient) toData() {
	r.t.Helper()
	r.hello()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<bob@example.test>", "250")
	r.cmd("DATA", "354")
}

// closed reports whether the server closed the connection (EOF soon).
func (r *rawClient) closed() bool {
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := r.br.ReadByte()
	return err != nil
}

// refusedUntilQuit checks the end of a session refused in its greeting
// (RFC 5321 3.1): each command the client had sent, pending of them, gets
// 503 5.5.1, QUIT gets 221, and then the connection is closed by the
// server (EOF, not a read timeout).
func (r *rawClient) refusedUntilQuit(pending int) {
	r.t.Helper()
	for range pending {
		r.expect("503 5.5.1 Bad sequence of commands")
	}
	r.cmd("RCPT TO:<x@example.test>", "503 5.5.1 Bad sequence of commands")
	r.cmd("QUIT", "221 2.0.0")
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.br.ReadByte(); err != io.EOF {
		r.t.Fatalf("after QUIT: %v, want EOF", err)
	}
}

// starttlsConfig is testConfig with STARTTLS on the listener and a fresh
// self-signed certificate; pool trusts it.
func starttlsConfig(t testing.TB) (*config.Config, *x509.CertPool) {
	t.Helper()
	cfg := testConfig(t)
	cert, key, pool := writeCert(t, t.TempDir())
	cfg.TLS.Cert, cfg.TLS.Key = cert, key
	cfg.Listeners[0].TLS = "starttls"
	return cfg, pool
}

// writeCert makes a self-signed certificate for mx.example.test in dir.
func writeCert(t testing.TB, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.example.test"},
		DNSNames: []string{"mx.example.test"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "EC PRIVATE KEY", kder)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// message is a small valid message.
func message(subject string) string {
	return "From: a@example.org\r\nTo: b@example.test\r\nSubject: " + subject + "\r\n\r\nHello.\r\n"
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// checkReceivedProto checks the WITH clause of our Received field.
func checkReceivedProto(t testing.TB, ts *testServer, id, want string) {
	t.Helper()
	rc, err := ts.q.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if !strings.Contains(string(b), want) {
		t.Fatalf("message lacks %q:\n%s", want, b)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// messageBody returns the queued message id as stored, our Received first.
func (ts *testServer) messageBody(t testing.TB, id string) string {
	t.Helper()
	rc, err := ts.q.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
