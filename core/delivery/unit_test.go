package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/queue"
	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

func TestPickRoute(t *testing.T) {
	cfg := &config.Config{Dir: t.TempDir(), Routes: []config.Route{
		{Domains: []string{"example.test"}, NextHop: "10.0.0.5:25"},
		{Domains: []string{"*.corp.test"}, NextHop: "[10.0.0.6]:2525"},
		{Domains: []string{"*"}, NextHop: "smtp.isp.test:587", SkipLocal: true},
	}}
	routes, err := compileRoutes(cfg)
	if err != nil {
		t.Fatal(err)
	}
	local := policy.NewDomains([]string{"local.test", ".sub.test"})
	tests := []struct {
		domain string
		want   int // route index, -1: the MX default
	}{
		{"example.test", 0},
		{"sub.example.test", 2},
		{"a.corp.test", 1},
		{"corp.test", 2}, // *.suffix is subdomains only
		{"far.test", 2},
		{"local.test", -1}, // skip_local: not the smarthost
		{"a.sub.test", -1}, // ".sub.test" is its subdomains...
		{"sub.test", 2},    // ...not sub.test itself
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			if got := pick(routes, local, tt.domain); got.idx != tt.want {
				t.Errorf("route %d, want %d", got.idx, tt.want)
			}
		})
	}
	if r := routes[1]; r.host != "10.0.0.6" || r.port != "2525" {
		t.Errorf("bracketed next hop parsed as %q %q", r.host, r.port)
	}
}

func TestCompileRoutesErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "empty.pass"), []byte("\n"), 0o600)
	tests := []struct {
		name string
		r    config.Route
		want string
	}{
		{"bad tls", config.Route{Domains: []string{"*"}, NextHop: "mx", TLS: "sometimes"}, "tls"},
		{"missing password file", config.Route{Domains: []string{"*"}, NextHop: "h:25",
			Auth: &config.RouteAuth{Username: "u", PasswordFile: "nope.pass"}}, "password_file"},
		{"empty password", config.Route{Domains: []string{"*"}, NextHop: "h:25",
			Auth: &config.RouteAuth{Username: "u", PasswordFile: "empty.pass"}}, "non-empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileRoutes(&config.Config{Dir: dir, Routes: []config.Route{tt.r}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestTLSVerifyDefaults(t *testing.T) {
	off := false
	tests := []struct {
		tls    string
		verify *bool
		want   bool
	}{
		{"required", nil, true}, {"implicit", nil, true}, {"opportunistic", nil, false},
		{"required", &off, false}, {"none", nil, false},
	}
	for _, tt := range tests {
		routes, err := compileRoutes(&config.Config{Routes: []config.Route{{Domains: []string{"*"}, NextHop: "h:25", TLS: tt.tls, TLSVerify: tt.verify}}})
		if err != nil {
			t.Fatal(err)
		}
		if routes[0].verify != tt.want {
			t.Errorf("tls %s verify %v: got %v", tt.tls, tt.verify, routes[0].verify)
		}
	}
}

func TestChooseAuth(t *testing.T) {
	tests := []struct {
		name    string
		offered []string
		tls     bool
		allow   bool
		want    string // mechanism, or a refusal's words
	}{
		{"TLS prefers PLAIN", []string{"CRAM-MD5", "LOGIN", "PLAIN"}, true, false, "PLAIN"},
		{"TLS LOGIN only", []string{"LOGIN"}, true, false, "LOGIN"},
		{"TLS CRAM-MD5 only", []string{"CRAM-MD5"}, true, false, "CRAM-MD5"},
		{"clear refused", []string{"PLAIN", "CRAM-MD5"}, false, false, "never sent without TLS"},
		{"clear allowed prefers CRAM-MD5", []string{"PLAIN", "CRAM-MD5"}, false, true, "CRAM-MD5"},
		{"nothing known", []string{"XOAUTH2", "SCRAM-SHA-256"}, true, false, "offers only XOAUTH2 SCRAM-SHA-256 "},
		{"no AUTH", nil, true, false, "offers no AUTH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := chooseAuth(&routeAuth{user: "u", pass: "p", allowPlain: tt.allow}, tt.offered, tt.tls)
			if strings.Contains(tt.want, " ") {
				// The refusal names what the hop offers: the admin's
				// next step depends on it.
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("refusal %v, want one saying %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mech, _, _ := a.Start(); mech != tt.want {
				t.Errorf("mechanism %s, want %s", mech, tt.want)
			}
		})
	}
}

func TestBouncePolicy(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		env    queue.Envelope
		want   bool
	}{
		{"local trusted", "local", queue.Envelope{From: "a@x", Client: queue.Client{Trusted: true}}, true},
		{"local authenticated", "local", queue.Envelope{From: "a@x", Client: queue.Client{Authenticated: true}}, true},
		{"local outsider", "local", queue.Envelope{From: "a@x"}, false},
		{"all outsider", "all", queue.Envelope{From: "a@x"}, true},
		{"none", "none", queue.Envelope{From: "a@x", Client: queue.Client{Trusted: true}}, false},
		{"null sender", "all", queue.Envelope{From: ""}, false},
		{"DSN never gets a DSN", "all", queue.Envelope{From: "a@x", IsDSN: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mayBounce(tt.policy, &tt.env); got != tt.want {
				t.Errorf("got %v", got)
			}
		})
	}
}

func TestNotifyParameter(t *testing.T) {
	tests := []struct {
		notify []string
		what   string
		want   bool
	}{
		{nil, "FAILURE", true}, {nil, "DELAY", true}, {nil, "SUCCESS", false},
		{[]string{"NEVER"}, "FAILURE", false}, {[]string{"SUCCESS"}, "FAILURE", false},
		{[]string{"FAILURE", "DELAY"}, "DELAY", true}, {[]string{"failure"}, "FAILURE", true},
	}
	for _, tt := range tests {
		if got := wants(&queue.Recipient{Notify: tt.notify}, tt.what); got != tt.want {
			t.Errorf("NOTIFY=%v %s: got %v", tt.notify, tt.what, got)
		}
	}
}

func TestRetrySchedule(t *testing.T) {
	s := &settings{retry: []time.Duration{time.Minute, 5 * time.Minute, time.Hour}}
	want := []time.Duration{time.Minute, time.Minute, 5 * time.Minute, time.Hour, time.Hour, time.Hour}
	for n, w := range want {
		if got := s.retryAfter(n); got != w {
			t.Errorf("after attempt %d: %v, want %v", n, got, w)
		}
	}
}

// Retries go on until queue.max_age (README): the last retry is brought
// forward to max_age exactly, and the attempt made then is the last one; a
// recipient it defers fails there and then (554 5.4.7 with the last reply).
// Expiring only past max_age would make that attempt schedule the next at
// max_age again, that is now: due at once, over and over, for as long as
// the clock reads max_age.
func TestScheduleExpiresAtMaxAge(t *testing.T) {
	s := &settings{retry: []time.Duration{time.Hour}, maxAge: 4 * time.Hour}
	received := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	expiry := received.Add(s.maxAge)
	tests := []struct {
		name    string
		now     time.Time
		expired bool
		next    time.Time // NextAttempt when not expired
	}{
		{"retry past max_age brought to it", expiry.Add(-30 * time.Minute), false, expiry},
		{"just before max_age", expiry.Add(-time.Nanosecond), false, expiry},
		{"exactly at max_age", expiry, true, time.Time{}},
		{"past max_age", expiry.Add(time.Second), true, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := &queue.Envelope{ID: "Q1", From: "a@x", Received: received, Attempts: 3,
				Rcpts: []*queue.Recipient{{Addr: "b@y", Status: queue.RcptPending, LastReply: "451 4.4.1 try later"}}}
			got := (&Manager{}).schedule(s, env, tt.now, false, false)
			r := env.Rcpts[0]
			if !tt.expired {
				if len(got) != 0 || r.Status != queue.RcptPending || !env.NextAttempt.Equal(tt.next) {
					t.Errorf("expired %d, %s, next %v; want pending, next %v", len(got), r.Status, env.NextAttempt, tt.next)
				}
				return
			}
			if len(got) != 1 || r.Status != queue.RcptFailed ||
				r.LastReply != "554 5.4.7 message expired in queue; last reply: 451 4.4.1 try later" {
				t.Errorf("expired %d, %s %q; want failed with 554 5.4.7 and the last reply", len(got), r.Status, r.LastReply)
			}
		})
	}
}

// DSN with RET=HDRS carries only the header of the original; long header
// lines survive the slicing.
func TestDSNHeadersOnly(t *testing.T) {
	long := "X-Long: " + strings.Repeat("y", 9000) + "\r\n"
	orig := "Subject: s\r\n" + long + "\r\nBODY SECRET\r\n"
	d := &dsn{kind: dsnFailed, hostname: "gw.test", now: time.Now(),
		env:   &queue.Envelope{ID: "Q1", From: "a@x", DSNRet: "HDRS", Received: time.Now()},
		rcpts: []*queue.Recipient{{Addr: "b@y", LastReply: "550 5.1.1 no\r\nInjected: x"}}}
	var b strings.Builder
	if err := d.write(&b, strings.NewReader(orig)); err != nil {
		t.Fatal(err)
	}
	p := parseDSN(t, received{data: b.String()})
	if p.types[2] != "text/rfc822-headers" || !strings.Contains(p.parts[2], long[:100]) || strings.Contains(b.String(), "BODY SECRET") {
		t.Errorf("original part %q: %.200q", p.types[2], p.parts[2])
	}
	if strings.Contains(b.String(), "\r\nInjected: x") {
		t.Error("a CR LF in a reply started a header field of its own")
	}
}

// Bounce fails what is pending, keeps what was delivered, and queues one
// DSN; a second Bounce finds nothing.
func TestBounce(t *testing.T) {
	cfg := baseConfig(t)
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"a@d.test", "b@d.test"}, localSender, plainBody, func(e *queue.Envelope) {
		e.NextAttempt = time.Now().Add(time.Hour)
		e.Rcpts[0].Status = queue.RcptDelivered
	})
	if err := Bounce(cfg, w.q, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	d := queuedDSN(t, w)
	d.want(t, "Final-Recipient: rfc822; b@d.test", "bounced by the administrator")
	d.wantNot(t, "a@d.test")
	if err := Bounce(cfg, w.q, id, time.Now()); err == nil {
		t.Error("second bounce of a gone message succeeded")
	}
}

// Stop interrupts a delivery still under way when its time runs out: the
// message stays queued, pending, due at once, its attempt not counted.
func TestStopKeepsInterruptedMessage(t *testing.T) {
	down := newPeer(t, func(p *peer) { p.hold = make(chan struct{}) })
	defer close(down.hold)
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	m := w.start()
	w.waitFor("the body to reach the peer", func() bool { return dataStarted(down) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	e := w.get(id)
	if r := e.Rcpts[0]; r.Status != queue.RcptPending || e.Attempts != 0 {
		t.Errorf("after Stop: status %s attempts %d (%s)", r.Status, e.Attempts, r.LastReply)
	}
	if _, err := w.q.LeaseID(id); err != nil {
		t.Errorf("lease not given back: %v", err)
	}
}

// Stop waits for a transaction whose final dot has gone out: the next hop
// has the message, and cut off before its reply it would get it again
// after the restart. The outcome is recorded, the message gone.
func TestStopWaitsForTheReplyToTheDot(t *testing.T) {
	slow := newPeer(t, func(p *peer) { p.hold = make(chan struct{}) })
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, slow.addr)}
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	later := w.enqueue("u@local.test", []string{"y@d.test"}, localSender, plainBody, func(e *queue.Envelope) {
		e.NextAttempt = time.Now().Add(time.Hour)
	})
	m := w.start()
	w.waitFor("the dot to reach the peer", func() bool { return dataStarted(slow) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- m.Stop(ctx) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) before the peer answered the dot", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(slow.hold)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if _, err := w.q.Get(id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("delivered message still queued: %v\n%s", err, w.logs.String())
	}
	if n := len(slow.messages()); n != 1 {
		t.Errorf("peer has %d messages, want 1", n)
	}
	if e := w.get(later); e.Rcpts[0].Status != queue.RcptPending {
		t.Errorf("the message not yet due: %s", e.Rcpts[0].Status)
	}
}

// After Stop no transaction starts, on a pooled connection either: one
// that a group still holds when the stop comes is closed, its
// recipients given back as interrupted, and the next hop gets nothing.
func TestNoTransactionAfterStop(t *testing.T) {
	p := newPeer(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, p.addr)}
	w := newWorld(t, cfg)
	w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	later := w.enqueue("u@local.test", []string{"y@d.test"}, localSender, plainBody, func(e *queue.Envelope) {
		e.NextAttempt = time.Now().Add(time.Hour)
	})
	m := w.start()
	w.waitFor("the first message delivered", func() bool { return len(p.messages()) == 1 })
	l, err := w.q.LeaseID(later)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	s := m.set.Load()
	g := m.groups(s, l.Envelope())[0]
	var c *conn
	w.waitFor("the connection pooled", func() bool { c = m.pool.get(g.key); return c != nil })
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	out, _, alive := m.transactOnce(stopped, c, l.Envelope(), l.Open, g, true)
	if alive || len(out) != 1 || out[0].reply != errShutdown {
		t.Errorf("after Stop: %+v alive %v", out, alive)
	}
	if n := len(p.messages()); n != 1 {
		t.Errorf("the next hop got %d messages, want 1", n)
	}
}

// A configured next hop whose name does not resolve defers the mail (our
// configuration problem); a recipient domain that does not exist bounces.
func TestUnresolvableHops(t *testing.T) {
	home := newPeer(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{
		mkRoute([]string{"local.test"}, home.addr),
		mkRoute([]string{"typo.test"}, "smarthost.typo.test:587"),
		mkRoute([]string{"*"}, "mx"),
	}
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"x@typo.test", "y@nxdomain.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the DSN for nxdomain.test", func() bool { return len(home.messages()) == 1 && w.get(id).Attempts >= 1 })
	for _, r := range w.get(id).Rcpts {
		want := map[string]queue.RcptStatus{"x@typo.test": queue.RcptPending, "y@nxdomain.test": queue.RcptFailed}[r.Addr]
		if r.Status != want {
			t.Errorf("%s: %s (%s), want %s", r.Addr, r.Status, r.LastReply, want)
		}
	}
	parseDSN(t, home.messages()[0]).want(t, "Status: 5.1.2", "y@nxdomain.test")
}

func TestGroupsSplitByDestinationAndSize(t *testing.T) {
	s, err := newSettings(&config.Config{Routes: []config.Route{
		{Domains: []string{"a.test", "b.test"}, NextHop: "10.0.0.5:25"},
		{Domains: []string{"*"}, NextHop: "mx"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	env := &queue.Envelope{}
	add := func(n int, domain string) {
		for i := range n {
			env.Rcpts = append(env.Rcpts, &queue.Recipient{Addr: fmt.Sprintf("u%d@%s", i, domain), Status: queue.RcptPending})
		}
	}
	add(150, "a.test")
	add(10, "b.test")
	add(3, "c.test")
	add(2, "D.TEST")
	var got []string
	for _, g := range (&Manager{}).groups(s, env) {
		got = append(got, fmt.Sprintf("%s:%d", g.key, len(g.rcpts)))
	}
	want := []string{"r0 10.0.0.5:25:100", "r0 10.0.0.5:25:60", "r1 mx c.test:3", "r1 mx d.test:2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("groups\n got %v\nwant %v", got, want)
	}
}

// A destination whose hops all failed is not tried again by every queued
// message: the next ones are deferred at once with the same reply.
func TestDeadDestinationSkipped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepts atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			c.Close() // no greeting: the session fails
		}
	}()
	cfg := baseConfig(t)
	cfg.Queue.Workers = 1
	cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)}
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, ln.Addr().String())}
	w := newWorld(t, cfg)
	var ids []string
	for range 5 {
		ids = append(ids, w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody))
	}
	w.start()
	w.waitFor("one attempt each", func() bool {
		for _, id := range ids {
			if w.get(id).Attempts < 1 {
				return false
			}
		}
		return true
	})
	if n := accepts.Load(); n != 1 {
		t.Errorf("%d connections to a dead destination for 5 messages, want 1", n)
	}
	suspended := 0
	for _, id := range ids {
		r := w.get(id).Rcpts[0]
		if r.Status != queue.RcptPending || !strings.HasPrefix(r.LastReply, "451 4.4.1") {
			t.Errorf("%s: %s %q", id, r.Status, r.LastReply)
		}
		// The messages the cache answered say so: nothing was tried for
		// them (Postfix: "delivery temporarily suspended").
		if strings.HasPrefix(r.LastReply, "451 4.4.1 delivery temporarily suspended: ") && r.LastLocal {
			suspended++
		}
	}
	if suspended != len(ids)-1 {
		t.Errorf("%d of %d messages answered as suspended, want %d", suspended, len(ids), len(ids)-1)
	}
	// Each deferral's log line names the hop that failed, the cached ones
	// too (relay=, not relay="").
	deferrals := 0
	for _, line := range strings.Split(w.logs.String(), "\n") {
		if strings.Contains(line, "msg=delivery ") && strings.Contains(line, "status=deferred") {
			deferrals++
			if !strings.Contains(line, ln.Addr().String()) {
				t.Errorf("a deferral does not name the hop: %s", line)
			}
		}
	}
	if deferrals != len(ids) {
		t.Errorf("%d deferrals logged, want %d:\n%s", deferrals, len(ids), w.logs.String())
	}
}

// Reload takes new routes and a new dns section for the next attempts.
func TestReloadRoutesAndDNS(t *testing.T) {
	p := newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(30 * time.Millisecond)}
	w := newWorld(t, cfg) // its DNS server knows nothing of new.test...
	w.dns.ServFail("new.test")
	id := w.enqueue("u@local.test", []string{"x@new.test"}, localSender, plainBody)
	m := w.start()
	w.waitFor("a deferral", func() bool { return w.get(id).Attempts >= 1 })
	if r := w.get(id).Rcpts[0]; r.Status != queue.RcptPending || !strings.Contains(r.LastReply, "4.4.3") {
		t.Fatalf("before reload: %s %q", r.Status, r.LastReply)
	}
	other := dnstest.New(t, "new.test. 60 IN MX 10 mx.new.test.", "mx.new.test. 60 IN A 127.0.0.8")
	w.mapAddr("127.0.0.8:25", p.addr)
	cfg2 := *cfg
	cfg2.DNS.Servers = []string{other.Addr}
	if err := m.Reload(&cfg2); err != nil {
		t.Fatal(err)
	}
	w.waitFor("delivery after reload", func() bool { return len(p.messages()) == 1 && w.queueEmpty() })

	bad := *cfg
	bad.Routes = []config.Route{{Domains: []string{"*"}, NextHop: "mx", TLS: "maybe"}}
	if err := m.Reload(&bad); err == nil {
		t.Error("a bad route was accepted at reload")
	}
}

func TestAddressLiteral(t *testing.T) {
	tests := []struct{ in, want string }{
		{"[127.0.0.1]", "127.0.0.1"}, {"[IPv6:::1]", "::1"}, {"[ipv6:2001:db8::1]", "2001:db8::1"},
		{"example.test", ""}, {"[not-an-ip]", ""}, {"[]", ""},
	}
	for _, tt := range tests {
		got, ok := addressLiteral(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("%q: %q %v, want %q", tt.in, got, ok, tt.want)
		}
	}
}

// A recipient at an address literal is delivered to that address, no MX.
func TestDeliverToAddressLiteral(t *testing.T) {
	p := newPeer(t)
	w := newWorld(t, baseConfig(t))
	w.mapAddr("127.0.0.9:25", p.addr)
	w.enqueue("u@local.test", []string{"x@[127.0.0.9]"}, localSender, plainBody)
	w.start()
	w.waitFor("delivery", func() bool { return len(p.messages()) == 1 && w.queueEmpty() })
	if n := w.dns.Queries("[127.0.0.9]", "MX"); n != 0 {
		t.Errorf("%d MX queries for an address literal", n)
	}
}

// RFC 5321 5.1: an MX list that names us drops us and every less preferred
// host; if nothing is left, the mail would loop and bounces (5.4.6).
func TestMXListNamingUs(t *testing.T) {
	p, home := newPeer(t), newPeer(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, "mx")}
	w := newWorld(t, cfg,
		"backup.test. 60 IN MX 10 primary.backup.test.",
		"backup.test. 60 IN MX 20 gw.test.", // we are its backup MX
		"backup.test. 60 IN MX 30 worse.backup.test.",
		"primary.backup.test. 60 IN A 127.0.0.10",
		"worse.backup.test. 60 IN A 127.0.0.11",
		"loop.test. 60 IN MX 10 gw.test.",
	)
	w.mapAddr("127.0.0.10:25", closedPort(t))
	w.mapAddr("127.0.0.11:25", p.addr) // must never be used: it is below us
	id := w.enqueue("u@local.test", []string{"x@backup.test", "y@loop.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the loop DSN", func() bool { return len(home.messages()) == 1 && w.get(id).Attempts >= 1 })
	for _, r := range w.get(id).Rcpts {
		want := map[string]queue.RcptStatus{"x@backup.test": queue.RcptPending, "y@loop.test": queue.RcptFailed}[r.Addr]
		if r.Status != want {
			t.Errorf("%s: %s (%s), want %s", r.Addr, r.Status, r.LastReply, want)
		}
	}
	if n := len(p.messages()); n != 0 {
		t.Errorf("a less preferred MX than us got %d messages", n)
	}
	// No SMTP server said it: our own words (RFC 3464 2.3.6), as
	// Postfix's "X-Postfix;".
	parseDSN(t, home.messages()[0]).want(t, "Status: 5.4.6", "Diagnostic-Code: X-Portcullis; 554 5.4.6 mail for loop.test loops back to myself")
}

// `queue flush` after the next hop came back: the flush must reach the
// hop, not be answered from the dead-destination cache with the old
// "connection refused" (counted as one more attempt, the retry pushed
// back), as `postqueue -f` makes Postfix's qmgr flush its dead queues.
func TestFlushForgetsDeadDestination(t *testing.T) {
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	go func() {
		for {
			c, err := down.Accept()
			if err != nil {
				return
			}
			c.Close() // no greeting: the hop is down
		}
	}()
	peer := newPeer(t)
	cfg := baseConfig(t)
	// Longer than the test: only the flush can bring the message back now.
	cfg.Queue.Retry = []config.Duration{config.Duration(10 * time.Minute)}
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, "127.0.0.9:25")}
	w := newWorld(t, cfg)
	w.mapAddr("127.0.0.9:25", down.Addr().String())
	id := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the refused attempt", func() bool { return w.get(id).Attempts == 1 })

	w.mapAddr("127.0.0.9:25", peer.addr) // the admin fixed the next hop
	before := w.q.Flushes()
	if err := w.q.Flush(id); err != nil {
		t.Fatal(err)
	}
	if w.q.Flushes() != before+1 {
		t.Fatalf("Flushes %d after a flush, want %d", w.q.Flushes(), before+1)
	}
	w.waitFor("delivery after the flush", func() bool { return len(peer.messages()) == 1 })
	w.waitFor("the queue empty", func() bool { return w.queueEmpty() })
}

// A next hop that greets with our own hostname is ourselves (a route that
// points back at a listener of ours): the message is deferred with 4.4.6
// and a warning, and no copy of it is made, where it used to go round
// until the hops ran out. The warning names the message (queue_id=), as
// every line about it does: it is the line that says what to fix, and a
// grep for the queue ID must find it.
func TestLoopBackToMyself(t *testing.T) {
	self := newPeer(t, func(p *peer) { p.srv.Domain = "GW.test" })
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)}
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, self.addr)}
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"x@local.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the deferral", func() bool { return w.get(id).Attempts == 1 })
	r := w.get(id).Rcpts[0]
	if r.Status != queue.RcptPending || !strings.HasPrefix(r.LastReply, "451 4.4.6") {
		t.Errorf("recipient %s %q, want pending with 451 4.4.6", r.Status, r.LastReply)
	}
	if n := len(self.messages()); n != 0 {
		t.Errorf("%d copies sent to ourselves", n)
	}
	warned := false
	for _, line := range strings.Split(w.logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "loops back to myself") {
			warned = true
			if !strings.Contains(line, " queue_id="+id+" ") {
				t.Errorf("the warning does not name the message (queue_id=%s): %s", id, line)
			}
		}
	}
	if !warned {
		t.Errorf("no warning in the log:\n%s", w.logs.String())
	}
}

// One next hop that defers: no "trying the next one" line, as there is none.
func TestNoNextHopLineForTheLastHop(t *testing.T) {
	p := newPeer(t)
	p.setRcpt(func(string) error { return &smtp.SMTPError{Code: 451, Message: "later"} })
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)}
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, p.addr)}
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the deferral", func() bool { return w.get(id).Attempts == 1 })
	if strings.Contains(w.logs.String(), "trying the next one") {
		t.Errorf("a next hop announced where there is none:\n%s", w.logs.String())
	}
}

// queuedDSN parses the one message left in w's queue after a Bounce: the DSN.
func queuedDSN(t *testing.T, w *world) *parsedDSN {
	t.Helper()
	envs, _ := w.q.List()
	if len(envs) != 1 || !envs[0].IsDSN {
		t.Fatalf("queue after bounce: %+v", envs)
	}
	rc, err := w.q.Open(envs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b := new(strings.Builder)
	if _, err := copyAll(b, rc); err != nil {
		t.Fatal(err)
	}
	return parseDSN(t, received{data: b.String()})
}
