package delivery

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/dkimsign"
	"github.com/portcullis-mta/portcullis/core/queue"
	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"

	"github.com/portcullis-mta/portcullis/core/internal/logbuf"
)

// world is one gateway under test: a real queue in a temp dir, an
// in-process DNS server, and a dialer that maps MX addresses (port 25) to
// in-process peers, all on loopback.
type world struct {
	t    *testing.T
	cfg  *config.Config
	q    *queue.Dir
	qs   queue.Store // what the Manager uses; nil: q
	dns  *dnstest.Server
	m    *Manager
	logs *logbuf.Buffer
	pool *x509.CertPool
	sign Signer // Deps.Signer; nil: none
	// timeout is Deps.Timeout; 0: 5s.
	timeout time.Duration

	mu    sync.Mutex
	route map[string]string // dialled address -> real address
}

// baseConfig: short retries so tests run in well under a second per retry.
func baseConfig(t *testing.T) *config.Config {
	return &config.Config{
		Hostname: "gw.test",
		Dir:      t.TempDir(),
		Relay:    config.Relay{Domains: []string{"local.test"}},
		Queue: config.Queue{
			Retry:   []config.Duration{config.Duration(40 * time.Millisecond)},
			MaxAge:  config.Duration(time.Hour),
			Bounce:  "local",
			Workers: 4,
		},
	}
}

func newWorld(t *testing.T, cfg *config.Config, records ...string) *world {
	t.Helper()
	w := &world{t: t, cfg: cfg, logs: &logbuf.Buffer{}, route: map[string]string{}}
	w.dns = dnstest.New(t, records...)
	cfg.DNS.Servers = []string{w.dns.Addr}
	q, err := queue.Open(filepath.Join(t.TempDir(), "spool"), queue.Options{NoSync: true, Poll: -1, Intake: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	w.q = q
	return w
}

// mapAddr makes a dial to from (e.g. "127.0.0.2:25") reach to.
func (w *world) mapAddr(from, to string) {
	w.mu.Lock()
	w.route[from] = to
	w.mu.Unlock()
}

func (w *world) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	w.mu.Lock()
	if to, ok := w.route[addr]; ok {
		addr = to
	}
	w.mu.Unlock()
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		w.t.Errorf("dial to non-loopback %s", addr) // tests never leave 127.0.0.0/8
		return nil, &net.OpError{Op: "dial", Err: os.ErrPermission}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// signing makes w sign what it delivers, as local.test selector s1 with a
// new Ed25519 key, and returns the key's DNS record for a verifier.
func (w *world) signing() string {
	w.t.Helper()
	key, err := dkimsign.GenerateKey("ed25519")
	if err != nil {
		w.t.Fatal(err)
	}
	record, err := dkimsign.RecordValue(key.Public())
	if err != nil {
		w.t.Fatal(err)
	}
	w.sign = dkimsign.New([]*dkimsign.Key{{Domain: "local.test", Selector: "s1", Signer: key}})
	return record
}

// start builds and starts the Manager; it is stopped when the test ends.
func (w *world) start() *Manager {
	w.t.Helper()
	var qs queue.Store = w.q
	if w.qs != nil {
		qs = w.qs
	}
	m, err := New(Deps{
		Config:  w.cfg,
		Queue:   qs,
		Logger:  slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Dial:    w.dial,
		Signer:  w.sign,
		Timeout: cmp.Or(w.timeout, 5*time.Second),
		TLSConfig: func(string) *tls.Config {
			return &tls.Config{RootCAs: w.pool}
		},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	w.m = m
	w.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Stop(ctx); err != nil {
			w.t.Errorf("Stop: %v", err)
		}
		if w.t.Failed() {
			w.t.Logf("delivery log:\n%s", w.logs.String())
		}
	})
	return m
}

// enqueue commits a message as the SMTP server would.
func (w *world) enqueue(from string, rcpts []string, client queue.Client, body string, edit ...func(*queue.Envelope)) string {
	w.t.Helper()
	d, err := w.q.NewDraft()
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := d.Write([]byte(body)); err != nil {
		w.t.Fatal(err)
	}
	env := &queue.Envelope{From: from, Client: client, Received: time.Now()}
	for _, r := range rcpts {
		env.Rcpts = append(env.Rcpts, &queue.Recipient{Addr: r, Status: queue.RcptPending})
	}
	for _, e := range edit {
		e(env)
	}
	if err := d.Commit(env, nil); err != nil {
		w.t.Fatal(err)
	}
	return d.ID()
}

// waitFor polls cond until it holds; the deadline only turns a hang into a
// failure, it measures nothing.
func (w *world) waitFor(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// queueEmpty reports whether the queue holds nothing.
func (w *world) queueEmpty() bool {
	l, err := w.q.List()
	if err != nil {
		w.t.Fatal(err)
	}
	return len(l) == 0
}

func (w *world) get(id string) *queue.Envelope {
	w.t.Helper()
	e, err := w.q.Get(id)
	if err != nil {
		w.t.Fatalf("get %s: %v", id, err)
	}
	return e
}

func mkRoute(domains []string, hop string, edit ...func(*config.Route)) config.Route {
	r := config.Route{Domains: domains, NextHop: hop, TLS: "none"}
	for _, e := range edit {
		e(&r)
	}
	return r
}

// passwordFile writes the smarthost password where a route can read it.
func passwordFile(t *testing.T, cfg *config.Config, pass string) string {
	p := filepath.Join(cfg.Dir, "isp.pass")
	if err := os.WriteFile(p, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return "isp.pass"
}

var (
	localSender   = queue.Client{IP: "127.0.0.1", Trusted: true}
	outsideSender = queue.Client{IP: "192.0.2.7"}
)

const plainBody = "From: a@local.test\r\nTo: b@example.test\r\nSubject: test\r\n\r\nhello\r\n"
