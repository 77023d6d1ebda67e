package daemon

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/delivery"
	"github.com/portcullis-mta/portcullis/core/internal/logbuf"
	"github.com/portcullis-mta/portcullis/core/verify"
)

// backend is a mailbox server behind the gateway (go-smtp on 127.0.0.1):
// it knows bob and carol, is busy (451) for busy, hangs on hang, and
// refuses everyone else with 550; it counts RCPTs per address and DATAs.
type backend struct {
	addr    string
	release chan struct{}

	mu    sync.Mutex
	rcpts map[string]int
	datas int
	mails []string
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{rcpts: map[string]int{}, release: make(chan struct{})}
	srv := smtp.NewServer(b)
	srv.Domain = "mbox.internal"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { close(b.release); srv.Close() })
	return b
}

func (b *backend) probes(addr string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rcpts[addr]
}

func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &backendSession{b: b}, nil }

type backendSession struct{ b *backend }

func (s *backendSession) Reset()        {}
func (s *backendSession) Logout() error { return nil }
func (s *backendSession) Mail(from string, _ *smtp.MailOptions) error {
	s.b.mu.Lock()
	s.b.mails = append(s.b.mails, from)
	s.b.mu.Unlock()
	return nil
}

func (s *backendSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.b.mu.Lock()
	s.b.rcpts[to]++
	s.b.mu.Unlock()
	switch to {
	case "bob@example.test", "carol@example.test":
		return nil
	case "busy@example.test":
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "mailbox store busy"}
	case "hang@example.test":
		<-s.b.release
		return nil
	}
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: no such user here"}
}

func (s *backendSession) Data(r io.Reader) error {
	s.b.mu.Lock()
	s.b.datas++
	s.b.mu.Unlock()
	_, err := io.Copy(io.Discard, r)
	return err
}

const verifyYAML = `hostname: mx.example.test
listeners:
  - {name: mx, address: "127.0.0.1:0"}
relay:
  domains: [example.test, plain.test, lax.test, dead.test]
  networks: ["127.0.0.1/32"]
routes:
  - {domains: [example.test], next_hop: "%BACKEND%", tls: none, verify_recipients: true}
  - {domains: [plain.test], next_hop: "%BACKEND%", tls: none}
  - {domains: [lax.test], next_hop: "%CLOSED%", tls: none, verify_recipients: true, verify_tempfail: accept}
  - {domains: [dead.test], next_hop: "%CLOSED%", tls: none, verify_recipients: true}
  - {domains: ["*"], next_hop: "%BACKEND%", tls: none}
queue: {dir: spool, quarantine_dir: quarantine, retry: [1h]}
dns: {servers: ["127.0.0.1:9"]}
`

// verifyGateway is a daemon wired as ` + "`portcullis run`" + ` wires delivery and
// verification, in front of b.
type verifyGateway struct {
	d    *Daemon
	path string
	yaml string
	logs *logbuf.Buffer
}

func startVerifyGateway(t *testing.T, b *backend) *verifyGateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	y := strings.NewReplacer("%BACKEND%", b.addr, "%CLOSED%", closed).Replace(verifyYAML)
	path := filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	d, logs := startLoaded(t, path, config.Log{Format: "text", Level: "info"}, func(d *Daemon) {
		m, err := delivery.New(delivery.Deps{Config: d.cfg, Queue: d.Queue(), Logger: d.log, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		d.AddService(m)
		v := verify.New(verify.Options{Prober: m, Logger: d.log, Timeout: 500 * time.Millisecond})
		d.Verifier = v
		d.AddService(v)
	})
	return &verifyGateway{d: d, path: path, yaml: y, logs: logs}
}

// rcpts runs one transaction from an outside client (127.0.0.2) and
// returns the reply to each RCPT.
func (g *verifyGateway) rcpts(t *testing.T, to ...string) []string {
	t.Helper()
	c := dial(t, g.d, 2)
	defer c.Close()
	cmds := []string{"EHLO client.example.org", "MAIL FROM:<someone@example.org>"}
	for _, r := range to {
		cmds = append(cmds, "RCPT TO:<"+r+">")
	}
	got := dialog(t, c, append(cmds, "QUIT")...)
	return got[3 : 3+len(to)]
}

func TestVerifyRecipientsAtRCPT(t *testing.T) {
	b := newBackend(t)
	g := startVerifyGateway(t, b)
	cases := []struct{ rcpt, want string }{
		{"bob@example.test", "250 2.1.5 "},
		{"eve@example.test", "550 5.1.1 <eve@example.test>: Recipient address rejected: undeliverable address: the mailbox server said: 550 5.1.1 <eve@example.test>: no such user here"},
		{"busy@example.test", "450 4.1.1 <busy@example.test>: Recipient address rejected: unverified address: the mailbox server said: 451 4.3.0 mailbox store busy"},
		{"hang@example.test", "450 4.1.1 <hang@example.test>: Recipient address rejected: unverified address: the mailbox server could not be asked; try again later"},
		{"anyone@dead.test", "450 4.1.1 <anyone@dead.test>: Recipient address rejected: unverified address: the mailbox server could not be asked; try again later"},
		{"anyone@lax.test", "250 2.1.5 "}, // connection refused, verify_tempfail: accept
		{"anyone@plain.test", "250 2.1.5 "},
		{"postmaster@example.test", "250 2.1.5 "},
		{"Postmaster", "250 2.1.5 "},
	}
	for _, c := range cases {
		got := g.rcpts(t, c.rcpt)[0]
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("RCPT TO:<%s>\n got %q\nwant %q", c.rcpt, got, c.want)
		}
	}
	for addr, want := range map[string]int{
		"bob@example.test": 1, "eve@example.test": 1, "busy@example.test": 1, "hang@example.test": 1,
		"anyone@plain.test": 0, "postmaster@example.test": 0,
	} {
		if got := b.probes(addr); got != want {
			t.Errorf("%s: the backend was asked %d times, want %d", addr, got, want)
		}
	}
	// Answers are cached: bob and eve are not asked again, busy is.
	got := g.rcpts(t, "bob@example.test", "eve@example.test", "busy@example.test")
	if !strings.HasPrefix(got[0], "250") || !strings.HasPrefix(got[1], "550 5.1.1") || !strings.HasPrefix(got[2], "450 4.1.1") {
		t.Errorf("second time: %q", got)
	}
	if b.probes("bob@example.test") != 1 || b.probes("eve@example.test") != 1 || b.probes("busy@example.test") != 2 {
		t.Errorf("probes: bob %d, eve %d, busy %d; want 1, 1, 2",
			b.probes("bob@example.test"), b.probes("eve@example.test"), b.probes("busy@example.test"))
	}
	b.mu.Lock()
	datas, mails := b.datas, b.mails
	b.mu.Unlock()
	if datas != 0 {
		t.Errorf("%d DATA commands reached the backend", datas)
	}
	for _, m := range mails {
		if m != "" {
			t.Errorf("a probe used MAIL FROM:<%s>, want <>", m)
		}
	}
	log := g.logs.String()
	for _, want := range []string{
		"msg=verify session=", "rcpt=eve@example.test route=0 next_hop=" + b.addr,
		"rcpt=anyone@dead.test route=3", "connection refused\" result=unverified action=deferred",
		"cached=false result=undeliverable", "cached=true result=undeliverable",
		"rcpt=anyone@lax.test route=2", "result=unverified action=\"accepted (verify_tempfail: accept)\"",
		`msg=refused session=`, `reply="550 5.1.1 <eve@example.test>: Recipient address rejected: undeliverable address`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// TestVerifyReload: a reload that points the route at another server
// asks that one (the old server's answers are dropped); one that keeps
// the next hop keeps the answers; one that turns verification off asks
// nobody.
func TestVerifyReload(t *testing.T) {
	b1, b2 := newBackend(t), newBackend(t)
	g := startVerifyGateway(t, b1)
	reload := func(oldnew ...string) {
		t.Helper()
		if err := os.WriteFile(g.path, []byte(strings.NewReplacer(oldnew...).Replace(g.yaml)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := g.d.Reload(g.path); err != nil {
			t.Fatal(err)
		}
	}
	g.rcpts(t, "bob@example.test")
	reload("mx.example.test", "mx2.example.test") // the next hop stays
	g.rcpts(t, "bob@example.test")
	if n := b1.probes("bob@example.test"); n != 1 {
		t.Errorf("same next hop after reload: %d probes, want 1 (cached)", n)
	}
	reload("{domains: [example.test], next_hop: \""+b1.addr, "{domains: [example.test], next_hop: \""+b2.addr)
	if got := g.rcpts(t, "bob@example.test", "eve@example.test"); !strings.HasPrefix(got[0], "250") || !strings.HasPrefix(got[1], "550 5.1.1") {
		t.Errorf("after the move: %q", got)
	}
	if b1.probes("bob@example.test") != 1 || b2.probes("bob@example.test") != 1 {
		t.Errorf("after the move: old server asked %d times, new one %d; want 1 and 1", b1.probes("bob@example.test"), b2.probes("bob@example.test"))
	}
	if !strings.Contains(g.logs.String(), "verify: reload dropped the cached answers") {
		t.Error("the drop is not logged")
	}
	reload("tls: none, verify_recipients: true}\n  - {domains: [plain.test]", "tls: none}\n  - {domains: [plain.test]")
	if got := g.rcpts(t, "nobody@example.test"); !strings.HasPrefix(got[0], "250") {
		t.Errorf("verification off: %q", got)
	}
	if b1.probes("nobody@example.test")+b2.probes("nobody@example.test") != 0 {
		t.Error("verification off, yet a probe")
	}
}
