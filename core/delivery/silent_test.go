package delivery

import (
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
)

// A next hop that takes the connection and then never greets, or hangs up
// before its greeting, is named as such: "connection timed out" alone sent
// the admin looking for a firewall, when the host answered the connect.
func TestSilentHopNamesTheStep(t *testing.T) {
	for _, tt := range []struct {
		name  string
		serve func(net.Conn)
		want  string
	}{
		{"never greets", func(net.Conn) {}, "451 4.4.2 127.0.0.1: conversation timed out while receiving the greeting"},
		{"hangs up", func(c net.Conn) { c.Close() }, " while receiving the greeting"},
		{"no EHLO reply", func(c net.Conn) { c.Write([]byte("220 mute.test ESMTP\r\n")) }, "451 4.4.2 127.0.0.1: conversation timed out while sending EHLO"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			serveEach(t, ln, tt.serve)
			cfg := baseConfig(t)
			cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)}
			cfg.Routes = []config.Route{mkRoute([]string{"*"}, ln.Addr().String())}
			w := newWorld(t, cfg)
			w.timeout = 200 * time.Millisecond
			id := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
			w.start()
			w.waitFor("the first attempt", func() bool { return w.get(id).Attempts == 1 })
			if r := w.get(id).Rcpts[0]; !strings.Contains(r.LastReply, tt.want) {
				t.Errorf("reply %q, want it to say %q", r.LastReply, tt.want)
			}
		})
	}
}

// The two TLS mix-ups of a smarthost route say what to set: tls: implicit
// at a port that greets in plain SMTP (the handshake reads "220 ..."), and
// a plain route at port 465, which waits for our handshake while we wait
// for its greeting.
func TestTLSModeMixups(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveEach(t, ln, func(c net.Conn) { c.Write([]byte("220 isp.test ESMTP Postfix\r\n")) })
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)}
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, ln.Addr().String(), func(r *config.Route) { r.TLS = "implicit"; r.TLSVerify = new(bool) })}
	w := newWorld(t, cfg)
	id := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the first attempt", func() bool { return w.get(id).Attempts == 1 })
	if r := w.get(id).Rcpts[0]; !strings.Contains(r.LastReply, `the hop greets in plain SMTP ("220 i"...), so it wants STARTTLS: set tls: required, not implicit`) {
		t.Errorf("tls: implicit at a plain port: reply %q", r.LastReply)
	}

	se := &stepError{step: "receiving the greeting", err: timeoutErr{}}
	h := hop{host: "smtp.isp.test", addr: netip.MustParseAddrPort("192.0.2.1:465")}
	if got, want := connReply(h, se).String(), "451 4.4.2 smtp.isp.test: conversation timed out while receiving the greeting: port 465 expects TLS first: set tls: implicit"; got != want {
		t.Errorf("plain route at 465: got %q, want %q", got, want)
	}
	// A server that stops waiting for our handshake before our greeting
	// timeout (Postfix's smtpd_starttls_timeout, 10 s under load) hangs up.
	eof := &stepError{step: "receiving the greeting", err: io.EOF}
	if got, want := connReply(h, eof).String(), "451 4.4.1 smtp.isp.test: EOF while receiving the greeting: port 465 expects TLS first: set tls: implicit"; got != want {
		t.Errorf("plain route at 465, hung up: got %q, want %q", got, want)
	}
	h.addr = netip.MustParseAddrPort("192.0.2.1:587")
	for _, err := range []error{se, eof} {
		if got := connReply(h, err).String(); strings.Contains(got, "465") {
			t.Errorf("the 465 hint at port 587: %q", got)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// A route with tls: implicit at port 465 whose hop completes the handshake
// and then never greets was told "port 465 expects TLS first: set tls:
// implicit", the setting it has: the hint is for a route that did not make
// the handshake, and here it sends the admin astray. The timeout is said
// as for any other port.
func TestImplicitTLSAt465SilentAfterHandshake(t *testing.T) {
	cert, pool := testCert(t, "smtp.isp.test")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	serveEach(t, ln, func(c net.Conn) { c.(*tls.Conn).Handshake() }) // and then no greeting
	cfg := baseConfig(t)
	cfg.Queue.Retry = []config.Duration{config.Duration(time.Hour)}
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, "smtp.isp.test:465", func(r *config.Route) { r.TLS = "implicit" })}
	w := newWorld(t, cfg, "smtp.isp.test. 60 IN A 127.0.0.5")
	w.pool = pool
	w.mapAddr("127.0.0.5:465", ln.Addr().String())
	w.timeout = 2 * time.Second // ample for the handshake on a loaded machine
	id := w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the first attempt", func() bool { return w.get(id).Attempts == 1 })
	r := w.get(id).Rcpts[0]
	if want := "451 4.4.2 smtp.isp.test: conversation timed out while receiving the greeting"; !strings.HasPrefix(r.LastReply, want) || strings.Contains(r.LastReply, "set tls") {
		t.Errorf("reply %q, want %q and no hint to set what is set", r.LastReply, want)
	}
}

// The plain-greeting hint is for the handshake of a tls: implicit route
// only: a STARTTLS handshake that reads "220 ..." is some other trouble,
// and "set tls: required, not implicit" would point the admin wrong.
func TestPlainGreetingHintOnlyForImplicit(t *testing.T) {
	rhe := tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake", RecordHeader: [5]byte{'2', '2', '0', ' ', 'i'}}
	h := hop{host: "smtp.isp.test", addr: netip.MustParseAddrPort("192.0.2.1:587")}
	if got := connReply(h, &tlsError{err: rhe}).String(); strings.Contains(got, "not implicit") {
		t.Errorf("after STARTTLS: %q", got)
	}
	if got := connReply(h, &tlsError{err: rhe, implicit: true}).String(); !strings.Contains(got, "set tls: required, not implicit") {
		t.Errorf("implicit: %q", got)
	}
}

// serveEach accepts connections on ln until the test ends and hands each
// to serve, then closes them all: a next hop that does only that much.
func serveEach(t *testing.T, ln net.Listener, serve func(net.Conn)) {
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			serve(c)
		}
	}()
}
