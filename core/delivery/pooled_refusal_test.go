package delivery

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
)

// A refusal we make ourselves from what a pooled session announced (its
// SIZE limit) must not outlive the session. Seen with Postfix 3.7 as the
// smarthost: it announced "250-SIZE 3000", took a small message, and was
// then restarted with message_size_limit = 10240000. The pooled session
// sat in CLOSE-WAIT (Postfix had closed it), yet every bigger message
// offered within the idle time bounced at once, without a byte sent:
//
//	delivery ... relay=127.0.0.1[127.0.0.1:10587] tls=true
//	  reply="552 5.3.4 message size 3464 exceeds size limit 3000 of server
//	  127.0.0.1[127.0.0.1:10587]" dsn=5.3.4 status=bounced attempt_time=0s
//
// while a new session would have said "250-SIZE 10240000". The peer here
// does what Postfix did: its first session announces SIZE 100 and hangs up
// after its message; later ones announce SIZE 1000000.
func TestPooledSessionGoneDoesNotBounceBySize(t *testing.T) {
	down := newRestartedPeer(t)
	home := newPeer(t)
	cfg := baseConfig(t)
	cfg.Queue.Workers = 1
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, down.addr)}
	w := newWorld(t, cfg)
	w.enqueue("u@local.test", []string{"x@d.test"}, localSender, plainBody)
	w.start()
	w.waitFor("the small message", func() bool { return down.count() == 1 && w.queueEmpty() })
	big := plainBody + strings.Repeat("0123456789abcdef\r\n", 8)
	w.enqueue("u@local.test", []string{"y@d.test"}, localSender, big)
	w.waitFor("the big message settled", func() bool { return w.queueEmpty() })
	if n := len(home.messages()); n != 0 {
		t.Errorf("%d DSNs; the big message fits the limit the server announces now", n)
	}
	if n := down.count(); n != 2 {
		t.Errorf("the next hop got %d messages, want 2", n)
	}
}

// restartedPeer is an SMTP server whose first session announces SIZE 100
// and hangs up after one message, as a Postfix stopped and started again
// with a larger message_size_limit; every later session announces SIZE
// 1000000.
type restartedPeer struct {
	addr     string
	mu       sync.Mutex
	sessions int
	msgs     int
}

func newRestartedPeer(t *testing.T) *restartedPeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &restartedPeer{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.sessions++
			first := p.sessions == 1
			p.mu.Unlock()
			go p.serve(c, first)
		}
	}()
	return p
}

func (p *restartedPeer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.msgs
}

func (p *restartedPeer) serve(c net.Conn, first bool) {
	defer c.Close()
	size := "1000000"
	if first {
		size = "100"
	}
	ehlo := "250-script.test\r\n250-PIPELINING\r\n250-SIZE " + size + "\r\n250 ENHANCEDSTATUSCODES\r\n"
	br := bufio.NewReader(c)
	c.Write([]byte("220 script.test ESMTP\r\n"))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		c.Write([]byte(basicReplies(ehlo, line)))
		switch line {
		case "QUIT":
			return
		case "DATA":
			for {
				if l, err := br.ReadString('\n'); err != nil {
					return
				} else if l == ".\r\n" {
					break
				}
			}
			c.Write([]byte(basicReplies(ehlo, ".")))
			p.mu.Lock()
			p.msgs++
			p.mu.Unlock()
			if first {
				return // stopped: the session ends with its message
			}
		}
	}
}
