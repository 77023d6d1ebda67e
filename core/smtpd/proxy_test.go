package smtpd

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/sdk"
)

func proxyHeader(t *testing.T, version byte, src string) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(version,
		&net.TCPAddr{IP: net.ParseIP(src), Port: 40000}, &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 25})
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProxyProtocol(t *testing.T) {
	cfg := testConfig(t)
	cfg.Listeners[0].ProxyProtocol = true
	cfg.Listeners[0].TrustedProxies = []config.Prefixes{{Prefix: netip.MustParsePrefix("127.0.0.7/32")}}
	ts := startServer(t, cfg, nil)
	for _, v := range []byte{1, 2} {
		t.Run("v"+string(rune('0'+v)), func(t *testing.T) {
			r := newRaw(t, ts.addr(), 7)
			r.send(string(proxyHeader(t, v, "203.0.113.9")))
			r.hello()
			r.cmd("MAIL FROM:<a@example.org>", "250")
			// The real client is outside: no relay for it, though the
			// proxy itself (127.0.0.7) is loopback.
			r.cmd("RCPT TO:<x@elsewhere.example>", "554 5.7.1")
			r.cmd("RCPT TO:<bob@example.test>", "250")
			r.cmd("DATA", "354")
			r.send(message("proxied") + ".\r\n")
			id := strings.Fields(r.expect("250 2.0.0"))[2]
			checkReceivedProto(t, ts, id, "[203.0.113.9]")
		})
	}
	t.Run("untrusted proxy", func(t *testing.T) {
		r := newRaw(t, ts.addr(), 8)
		r.send(string(proxyHeader(t, 1, "203.0.113.9")))
		if !r.closed() {
			t.Fatal("header from an untrusted address accepted")
		}
	})
	t.Run("garbage header", func(t *testing.T) {
		r := newRaw(t, ts.addr(), 7)
		r.send("PROXY TCP4 nonsense\r\n")
		if !r.closed() {
			t.Fatal("bad header accepted")
		}
	})
}

func TestHeloPhase(t *testing.T) {
	run := &ruleRunner{rules: map[sdk.Phase]func(*sdk.Request) *pipeline.Decision{
		sdk.PhaseHelo: func(r *sdk.Request) *pipeline.Decision {
			if r.Conn.HELO == "mx.example.test" {
				return &pipeline.Decision{Action: pipeline.Reject, Reply: &pipeline.Reply{Code: 550, Enhanced: "5.7.1", Text: "You are not me"}}
			}
			return cont()
		},
	}}
	ts := startServer(t, testConfig(t), func(d *Deps) { d.Pipeline = run })
	r := newRaw(t, ts.addr(), 2)
	r.expect("220")
	r.cmd("EHLO mx.example.test", "550 5.7.1 You are not me")
	r.cmd("MAIL FROM:<a@example.org>", "503 5.5.1")
	r.cmd("EHLO honest.example.org", "250")
	// A later EHLO or HELO is judged too: go-smtp calls NewSession only once.
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("EHLO mx.example.test", "550 5.7.1 You are not me")
	r.cmd("MAIL FROM:<a@example.org>", "503 5.5.1 Send EHLO first")
	r.cmd("RCPT TO:<bob@example.test>", "503 5.5.1 Send EHLO first")
	r.cmd("HELO mx.example.test", "550 5.7.1 You are not me")
	r.cmd("HELO honest.example.org", "250")
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<bob@example.test>", "250")
	r.cmd("DATA", "354")
	r.send(message("helo") + ".\r\n")
	id := strings.Fields(r.expect("250 2.0.0"))[2]
	checkReceivedProto(t, ts, id, "Received: from honest.example.org ")
}

// TestReloadCertificate: a reload picks up a new certificate for new sessions.
func TestReloadCertificate(t *testing.T) {
	cfg, pool1 := starttlsConfig(t)
	ts := startServer(t, cfg, nil)
	handshake := func(pool *x509.CertPool) error {
		r := newRaw(t, ts.addr(), 2)
		r.hello()
		r.cmd("STARTTLS", "220")
		tc := tls.Client(r.c, &tls.Config{ServerName: "mx.example.test", RootCAs: pool, MinVersion: tls.VersionTLS12})
		return tc.Handshake()
	}
	if err := handshake(pool1); err != nil {
		t.Fatal(err)
	}
	next := *cfg
	var pool2 *x509.CertPool
	next.TLS.Cert, next.TLS.Key, pool2 = writeCert(t, t.TempDir())
	d := ts.deps
	d.Config = &next
	if err := ts.Reload(d); err != nil {
		t.Fatal(err)
	}
	if err := handshake(pool2); err != nil {
		t.Fatalf("new certificate not served: %v", err)
	}
	if err := handshake(pool1); err == nil {
		t.Fatal("old certificate still served")
	}
}

// proxyServer runs a PROXY listener that trusts 127.0.0.7 only.
func proxyServer(t *testing.T, mutate func(*config.Config)) *testServer {
	t.Helper()
	cfg := testConfig(t)
	cfg.Listeners[0].ProxyProtocol = true
	cfg.Listeners[0].TrustedProxies = []config.Prefixes{{Prefix: netip.MustParsePrefix("127.0.0.7/32")}}
	if mutate != nil {
		mutate(cfg)
	}
	return startServer(t, cfg, nil)
}

// slotsFree waits until no connection holds a slot (total or per IP).
func slotsFree(t *testing.T, ts *testServer) {
	t.Helper()
	waitFor(t, func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return len(ts.perListener) == 0 && len(ts.perIP) == 0
	})
}

// sendMessage runs one transaction and returns the queue ID.
func (r *rawClient) sendMessage(subject string) string {
	r.t.Helper()
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<bob@example.test>", "250")
	r.cmd("DATA", "354")
	r.send(message(subject) + ".\r\n")
	return strings.Fields(r.expect("250 2.0.0"))[2]
}

// TestProxyHeaderSplit: a header that arrives in two TCP segments is read
// whole (proxy-protocol.txt 2.1: receivers should be tolerant), for v1 as
// for v2, not refused as "bad".
func TestProxyHeaderSplit(t *testing.T) {
	ts := proxyServer(t, nil)
	for _, v := range []byte{1, 2} {
		t.Run("v"+string(rune('0'+v)), func(t *testing.T) {
			h := string(proxyHeader(t, v, "203.0.113.9"))
			r := newRaw(t, ts.addr(), 7)
			r.send(h[:len(h)/2])
			time.Sleep(50 * time.Millisecond) // let the first half go as a segment of its own
			r.send(h[len(h)/2:])
			r.hello()
			checkReceivedProto(t, ts, r.sendMessage("split"), "[203.0.113.9]")
		})
	}
}

// TestProxyHeaderKinds: what each kind of header does to the session. A
// header that names no TCP client (UNIX or UDP source) is refused, frees
// its slots and never makes a session with no address; LOCAL (the
// proxy's own health check) keeps the proxy's address, as the spec says.
func TestProxyHeaderKinds(t *testing.T) {
	ts := proxyServer(t, func(c *config.Config) { c.Limits.MaxConnectionsPerIP = 1 })
	refused := []struct {
		name string
		hdr  []byte
	}{
		{"v2 unix", v2Header(ppProxy, ppUnixStream, unixBody)},
		{"v2 udp", v2Header(ppProxy, ppUDP4, v4Body)},
		{"v2 truncated", v2Header(ppProxy, ppTCP6, v2TCP6Body("2001:db8::9"))[:30]},
		{"v1 too long", append([]byte("PROXY UNKNOWN "), bytes.Repeat([]byte("x"), 120)...)},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			// Twice: a leaked per-IP slot would refuse the second with 421.
			for i := 0; i < 2; i++ {
				r := newRaw(t, ts.addr(), 7)
				r.send(string(tc.hdr))
				if tc.name == "v2 truncated" {
					_ = r.c.(*net.TCPConn).CloseWrite()
				}
				if !r.closed() {
					t.Fatal("header accepted")
				}
				slotsFree(t, ts)
			}
			if strings.Contains(ts.logs.String(), "invalid IP") {
				t.Fatalf("a session without a client address:\n%s", ts.logs.String())
			}
		})
	}
	accepted := []struct {
		name, want string
		hdr        []byte
	}{
		{"v2 local", "[127.0.0.7]", v2Header(ppLocal, ppUnspec, nil)},
		{"v1 unknown", "[127.0.0.7]", []byte("PROXY UNKNOWN\r\n")},
		{"v2 tcp6 with TLVs", "[IPv6:2001:db8:1:2::9]", v2Header(ppProxy, ppTCP6, append(v2TCP6Body("2001:db8:1:2::9"), tlvs...))},
		{"v2 v4-mapped", "[203.0.113.9]", v2Header(ppProxy, ppTCP6, v2TCP6Body("::ffff:203.0.113.9"))},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			r := newRaw(t, ts.addr(), 7)
			r.send(string(tc.hdr))
			r.hello()
			checkReceivedProto(t, ts, r.sendMessage(tc.name), tc.want)
			r.cmd("QUIT", "221")
			slotsFree(t, ts)
		})
	}
}

// TestProxyHeaderTimeout: a client that sends no header, or part of one,
// is dropped when the header timeout (here the command timeout) runs out,
// and its slot is free again.
func TestProxyHeaderTimeout(t *testing.T) {
	ts := proxyServer(t, func(c *config.Config) { c.Limits.CommandTimeout = config.Duration(200 * time.Millisecond) })
	for _, part := range []string{"", "PROXY TCP4 203.0", string(v2Header(ppProxy, ppTCP4, v4Body)[:14])} {
		r := newRaw(t, ts.addr(), 7)
		r.send(part)
		if !r.hungUp() {
			t.Fatalf("after %q: still open", part)
		}
		slotsFree(t, ts)
	}
}

// TestPerIPLimitKeys: max_connections_per_ip counts the client the PROXY
// header names, an IPv6 client by its /64 (a fresh address per connection
// must not get past it) and an IPv4-mapped one as the IPv4 address.
func TestPerIPLimitKeys(t *testing.T) {
	ts := proxyServer(t, func(c *config.Config) { c.Limits.MaxConnectionsPerIP = 1 })
	open := func(hdr []byte, want string) *rawClient {
		r := newRaw(t, ts.addr(), 7)
		r.send(string(hdr))
		r.expect(want)
		return r
	}
	a := open(v2Header(ppProxy, ppTCP6, v2TCP6Body("2001:db8:1:2::1")), "220")
	open(v2Header(ppProxy, ppTCP6, v2TCP6Body("2001:db8:1:2:ffff::2")), "421 4.7.0 mx.example.test Too many connections from your address")
	open([]byte("PROXY TCP6 2001:db8:1:3::1 2001:db8::25 40000 25\r\n"), "220")
	open(v2Header(ppProxy, ppTCP4, v4Body), "220")
	open([]byte("PROXY TCP6 ::ffff:203.0.113.9 ::ffff:192.0.2.1 40000 25\r\n"), "421 4.7.0")
	// The proxy's own address is not what counts.
	open([]byte("PROXY TCP4 198.51.100.1 192.0.2.1 40000 25\r\n"), "220")
	a.cmd("QUIT", "221")
	waitFor(t, func() bool { return ts.ipCount(mustAddr("2001:db8:1:2::1")) == 0 })
	open(v2Header(ppProxy, ppTCP6, v2TCP6Body("2001:db8:1:2::3")), "220")
}

func (s *Server) ipCount(ip netip.Addr) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perIP[limitKey(ip)]
}

// TestProxyPregreet: the PROXY header is not the client talking first;
// client bytes right behind it are.
func TestProxyPregreet(t *testing.T) {
	ts := proxyServer(t, func(c *config.Config) { c.Limits.PregreetDelay = config.Duration(200 * time.Millisecond) })
	r := newRaw(t, ts.addr(), 7)
	r.send(string(proxyHeader(t, 2, "203.0.113.9")) + "EHLO eager.example\r\n")
	r.expect("554 5.5.1 Protocol error: client sent data before greeting")
	r.refusedUntilQuit(1)
	if !strings.Contains(ts.logs.String(), `ip=203.0.113.9`) {
		t.Fatal("session not logged with the client's address")
	}
	polite := newRaw(t, ts.addr(), 7)
	polite.send(string(proxyHeader(t, 1, "203.0.113.9")))
	polite.hello()
}
