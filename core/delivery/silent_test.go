package delivery

import (
	"net"
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
					tt.serve(c)
				}
			}()
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
