package smtpd

import (
	"errors"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
)

// reloadListeners reloads ts with cfg's listeners replaced by ls (and the
// host name set, so that a greeting tells which config a session got).
func reloadListeners(t *testing.T, ts *testServer, host string, ls ...config.Listener) error {
	t.Helper()
	next := *ts.deps.Config
	next.Hostname = host
	next.Listeners = ls
	d := ts.deps
	d.Config = &next
	return ts.Reload(d)
}

func mxListener() config.Listener {
	return config.Listener{Name: "mx", Address: "127.0.0.1:0", TLS: "none", Auth: "optional"}
}

func subListener(addr string) config.Listener {
	return config.Listener{Name: "sub", Address: addr, TLS: "none", Auth: "optional"}
}

// refuses reports whether nothing accepts connections at addr.
func refuses(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
	}
	return err != nil
}

// sendOne runs a whole transaction on a new connection to addr and
// checks the greeting names host.
func sendOne(t *testing.T, addr, host string) {
	t.Helper()
	r := newRaw(t, addr, 2)
	r.expect("220 " + host)
	r.cmd("EHLO c.example.org", "250")
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<bob@example.test>", "250")
	r.cmd("DATA", "354")
	r.send(message("to "+addr) + ".\r\n")
	r.expect("250 2.0.0")
}

// TestReloadAddsListener: a new listener accepts at once; the unchanged
// one keeps its socket (same port) and the session open on it goes on.
func TestReloadAddsListener(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	before := ts.addr()
	open := newRaw(t, before, 2)
	open.hello()
	open.cmd("MAIL FROM:<a@example.org>", "250")

	if err := reloadListeners(t, ts, "mx2.example.test", mxListener(), subListener("127.0.0.3:0")); err != nil {
		t.Fatal(err)
	}
	if ts.Addr("sub") == nil {
		t.Fatal("new listener not bound")
	}
	if got := ts.addr(); got != before {
		t.Fatalf("unchanged listener rebound: %s, was %s", got, before)
	}
	sendOne(t, ts.Addr("sub").String(), "mx2.example.test")
	sendOne(t, before, "mx2.example.test")
	open.cmd("RCPT TO:<bob@example.test>", "250")
	open.cmd("DATA", "354")
	open.send(message("across reload") + ".\r\n")
	open.expect("250 2.0.0")
}

// TestReloadRemovesListener: a removed listener refuses new connections;
// a session already open on it completes its message.
func TestReloadRemovesListener(t *testing.T) {
	cfg := testConfig(t)
	cfg.Listeners = append(cfg.Listeners, subListener("127.0.0.3:0"))
	ts := startServer(t, cfg, nil)
	sub := ts.Addr("sub").String()
	open := newRaw(t, sub, 2)
	open.hello()
	open.cmd("MAIL FROM:<a@example.org>", "250")

	if err := reloadListeners(t, ts, "mx2.example.test", mxListener()); err != nil {
		t.Fatal(err)
	}
	if ts.Addr("sub") != nil {
		t.Fatal("removed listener still reported")
	}
	if !refuses(sub) {
		t.Fatal("removed listener still accepts")
	}
	open.cmd("RCPT TO:<bob@example.test>", "250")
	open.cmd("DATA", "354")
	open.send(message("on a removed listener") + ".\r\n")
	open.expect("250 2.0.0")
	sendOne(t, ts.addr(), "mx2.example.test")
	if n := len(ts.queued(t)); n != 2 {
		t.Fatalf("%d queued, want 2", n)
	}
}

// TestReloadMovesListener: a listener whose address changed is rebound;
// the old address refuses, a session open on it goes on.
func TestReloadMovesListener(t *testing.T) {
	cfg := testConfig(t)
	cfg.Listeners = append(cfg.Listeners, subListener("127.0.0.3:0"))
	ts := startServer(t, cfg, nil)
	was := ts.Addr("sub").String()
	open := newRaw(t, was, 2)
	open.hello()

	if err := reloadListeners(t, ts, "mx2.example.test", mxListener(), subListener("127.0.0.2:0")); err != nil {
		t.Fatal(err)
	}
	now := ts.Addr("sub").String()
	if !strings.HasPrefix(now, "127.0.0.2:") {
		t.Fatalf("sub at %s, want 127.0.0.2", now)
	}
	if !refuses(was) {
		t.Fatal("old address still accepts")
	}
	sendOne(t, now, "mx2.example.test")
	open.cmd("MAIL FROM:<a@example.org>", "250")
	open.cmd("RCPT TO:<bob@example.test>", "250")
	open.cmd("DATA", "354")
	open.send(message("on a moved listener") + ".\r\n")
	open.expect("250 2.0.0")
}

// TestReloadRenamesListener: a listener renamed on the same address keeps
// its socket (binding a second one would fail: address in use); new
// connections are admitted under the new name, an open session goes on.
func TestReloadRenamesListener(t *testing.T) {
	cfg := testConfig(t)
	cfg.Listeners = append(cfg.Listeners, subListener("127.0.0.3:0"))
	ts := startServer(t, cfg, nil)
	was := ts.Addr("sub").String()
	open := newRaw(t, was, 2)
	open.hello()

	renamed := subListener("127.0.0.3:0")
	renamed.Name = "submission"
	if err := reloadListeners(t, ts, "mx2.example.test", mxListener(), renamed); err != nil {
		t.Fatal(err)
	}
	if ts.Addr("sub") != nil || ts.Addr("submission") == nil || ts.Addr("submission").String() != was {
		t.Fatalf("after the rename: sub %v, submission %v (was %s)", ts.Addr("sub"), ts.Addr("submission"), was)
	}
	sendOne(t, was, "mx2.example.test")
	if !strings.Contains(ts.logs.String(), "listener=submission") {
		t.Errorf("no connection admitted under the new name:\n%s", ts.logs.String())
	}
	open.cmd("MAIL FROM:<a@example.org>", "250")
	open.cmd("RCPT TO:<bob@example.test>", "250")
	open.cmd("DATA", "354")
	open.send(message("on a renamed listener") + ".\r\n")
	open.expect("250 2.0.0")

	// And back, with another listener moving in beside it.
	if err := reloadListeners(t, ts, "mx3.example.test", mxListener(), subListener("127.0.0.3:0")); err != nil {
		t.Fatal(err)
	}
	if ts.Addr("sub") == nil || ts.Addr("sub").String() != was || ts.Addr("submission") != nil {
		t.Fatal("the rename back did not keep the socket")
	}
	sendOne(t, was, "mx3.example.test")
}

// TestReloadBindFails: an address in use refuses the whole reload; the
// old config and listeners stay, and a later good reload still works.
func TestReloadBindFails(t *testing.T) {
	cfg := testConfig(t)
	cfg.Listeners = append(cfg.Listeners, subListener("127.0.0.3:0"))
	ts := startServer(t, cfg, nil)
	mx, sub := ts.addr(), ts.Addr("sub").String()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	busy := config.Listener{Name: "new", Address: taken.Addr().String(), TLS: "none"}
	for _, ls := range [][]config.Listener{
		{mxListener(), subListener("127.0.0.3:0"), busy},   // a new listener
		{mxListener(), subListener(taken.Addr().String())}, // a moved one
		{mxListener(), busy},                               // and one removed
	} {
		if err := reloadListeners(t, ts, "mx2.example.test", ls...); err == nil {
			t.Fatalf("reload to %v accepted with the address in use", ls)
		}
	}
	if ts.Addr("new") != nil || ts.addr() != mx || ts.Addr("sub") == nil || ts.Addr("sub").String() != sub {
		t.Fatal("listeners changed by a refused reload")
	}
	sendOne(t, mx, "mx.example.test")
	sendOne(t, sub, "mx.example.test")

	if err := reloadListeners(t, ts, "mx2.example.test", mxListener(), subListener("127.0.0.3:0")); err != nil {
		t.Fatal(err)
	}
	sendOne(t, sub, "mx2.example.test")
}

// TestReloadAfterShutdown opens nothing again.
func TestReloadAfterShutdown(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := reloadListeners(t, ts, "mx2.example.test", mxListener(), subListener("127.0.0.3:0")); err != nil {
		t.Fatal(err)
	}
	if ts.Addr("sub") != nil {
		t.Fatal("a reload after shutdown opened a listener")
	}
}

// TestDualStackListeners: 0.0.0.0:P and [::]:P are two listeners, one
// per family (as nginx and Postfix bind them), each with its own name,
// not one dual-stack socket that leaves the second unable to bind.
func TestDualStackListeners(t *testing.T) {
	ts, port := startDualStack(t)
	for _, c := range []struct{ addr, ip, listener string }{{"127.0.0.1:" + port, "127.0.0.1", "mx"}, {"[::1]:" + port, "::1", "mx6"}} {
		conn, err := net.DialTimeout("tcp", c.addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		r := &rawClient{t: t, c: conn, br: newReader(conn)}
		r.hello()
		r.cmd("QUIT", "221")
		conn.Close()
		line := regexp.MustCompile(`msg=connect session=\S+ ip=` + regexp.QuoteMeta(c.ip) + ` port=\d+ listener=` + c.listener + `\n`)
		if !line.MatchString(ts.logs.String()) {
			t.Errorf("connection to %s not logged from %s on %s:\n%s", c.addr, c.ip, c.listener, ts.logs.String())
		}
	}
}

// startDualStack starts a server listening on 0.0.0.0:P ("mx") and [::]:P
// ("mx6") for one port P, and returns it with P. P is one a probe found
// free, and it stays free only until the probe lets it go: on a busy
// machine another test's connection or listener may take it before the
// server binds it (CI: "listener mx: listen tcp4 0.0.0.0:35813: bind:
// address already in use"). That says nothing of the server, so a bind
// refused that way is tried again with a new port.
func startDualStack(t *testing.T) (*testServer, string) {
	t.Helper()
	var err error
	for range 20 {
		probe, perr := net.Listen("tcp", "[::1]:0")
		if perr != nil {
			t.Fatalf("this test needs IPv6 loopback (::1): %v", perr)
		}
		_, port, _ := net.SplitHostPort(probe.Addr().String())
		probe.Close()
		cfg := testConfig(t)
		v4, v6 := mxListener(), subListener("[::]:"+port)
		v4.Address, v6.Name = "0.0.0.0:"+port, "mx6"
		cfg.Listeners = []config.Listener{v4, v6}
		var ts *testServer
		if ts, err = tryStartServer(t, cfg, nil); err == nil {
			return ts, port
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
		t.Logf("port %s taken meanwhile, trying another: %v", port, err)
	}
	t.Fatalf("no port free on both 0.0.0.0 and [::] in 20 tries: %v", err)
	return nil, ""
}
