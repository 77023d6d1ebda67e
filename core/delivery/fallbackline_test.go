package delivery

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
)

// A hop cut off by the gateway's shutdown while its session was being set
// up is followed by no other: the info line that says the next one is
// being tried (so that an admin sees a domain's first MX down) must not
// say so then, for every message in flight at every restart.
func TestShutdownDuringConnectTriesNoNextHop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c // and never greets
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		select {
		case c := <-accepted:
			c.Close()
		default:
		}
	})
	mx2 := newPeer(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"*"}, "mx")}
	w := twoMXWorld(t, cfg, ln.Addr().String(), mx2.addr)
	id := w.enqueue("u@local.test", []string{"x@dom.test"}, localSender, plainBody)
	m := w.start()
	var c net.Conn
	select {
	case c = <-accepted:
		accepted <- c // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("mx1 was never dialled")
	}
	if err := m.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	logs := w.logs.String()
	if logLine(logs, "queue_id="+id, "trying the next one") {
		t.Errorf("a line says the next hop is tried, at shutdown:\n%s", logs)
	}
	if n := len(mx2.messages()); n != 0 {
		t.Errorf("mx2 got %d messages", n)
	}
}
