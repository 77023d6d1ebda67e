package smtpd

import (
	"bufio"
	"net"
	"testing"
)

// zonedConn is a connection from a link-local client as the kernel
// reports it: with the zone of the interface it came in on.
type zonedConn struct {
	net.Conn
	remote net.Addr
}

func (c *zonedConn) RemoteAddr() net.Addr { return c.remote }

// TestLinkLocalClientZone: a client on a link-local address arrives as
// fe80::1%eth0. The zone names our interface, not the client: it is no
// part of the address that rules, stages, the DNS (ip6.arpa) and the
// Received field see (RFC 5321 4.1.3's IPv6-addr has none).
func TestLinkLocalClientZone(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	zoned := &zonedConn{Conn: raw, remote: &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0", Port: 40000}}
	ts.loops.Add(1)
	go func() {
		defer ts.loops.Done()
		ts.admit("mx", nil, zoned)
	}()
	r := &rawClient{t: t, c: c, br: bufio.NewReader(c)}
	r.hello()
	id := r.sendMessage("link-local")
	r.cmd("QUIT", "221")
	checkReceivedProto(t, ts, id, "(unknown [IPv6:fe80::1])")
	for _, env := range ts.queued(t) {
		if env.Client.IP != "fe80::1" {
			t.Errorf("client IP %q, want fe80::1", env.Client.IP)
		}
	}
}
