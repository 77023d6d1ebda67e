package delivery

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
)

// scriptPeer is a raw SMTP server on 127.0.0.1:0 for replies go-smtp
// cannot give (a refused DATA command, a missing extension): reply maps
// each command line to the reply sent back ("" closes the connection).
// Message bodies after a 354 are collected; the final dot is answered with
// reply(".") ("" closes the connection there too).
type scriptPeer struct {
	addr     string
	greeting string
	mu       sync.Mutex
	cmds     []string
	msgs     []string
}

func newScriptPeer(t *testing.T, reply func(line string) string) *scriptPeer {
	t.Helper()
	return newScriptPeerGreeting(t, "220 script.test ESMTP\r\n", reply)
}

// newScriptPeerGreeting is newScriptPeer with the greeting it sends.
func newScriptPeerGreeting(t *testing.T, greeting string, reply func(line string) string) *scriptPeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &scriptPeer{addr: ln.Addr().String(), greeting: greeting}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c, reply)
		}
	}()
	return p
}

func (p *scriptPeer) serve(c net.Conn, reply func(string) string) {
	defer c.Close()
	br := bufio.NewReader(c)
	c.Write([]byte(p.greeting))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		p.mu.Lock()
		p.cmds = append(p.cmds, line)
		p.mu.Unlock()
		r := reply(line)
		if r == "" {
			return
		}
		c.Write([]byte(r))
		if strings.HasPrefix(line, "QUIT") {
			return
		}
		if !strings.HasPrefix(r, "354") {
			continue
		}
		var b strings.Builder
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if l == ".\r\n" {
				break
			}
			b.WriteString(l)
		}
		p.mu.Lock()
		p.msgs = append(p.msgs, b.String())
		p.mu.Unlock()
		r = reply(".")
		if r == "" {
			return
		}
		c.Write([]byte(r))
	}
}

func (p *scriptPeer) commands() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.cmds...)
}

// quitLast reports whether the last command the peer got is QUIT: the
// session ended in step, not with a hang-up.
func (p *scriptPeer) quitLast() bool {
	cmds := p.commands()
	return len(cmds) > 0 && cmds[len(cmds)-1] == "QUIT"
}

func (p *scriptPeer) messages() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.msgs...)
}

// basicReplies answers a plain ESMTP server's way; ehlo is the EHLO reply.
func basicReplies(ehlo string, line string) string {
	switch {
	case strings.HasPrefix(line, "EHLO"):
		return ehlo
	case strings.HasPrefix(line, "HELO"), strings.HasPrefix(line, "MAIL"),
		strings.HasPrefix(line, "RCPT"), line == "RSET":
		return "250 2.0.0 ok\r\n"
	case line == "DATA":
		return "354 go on\r\n"
	case line == ".":
		return "250 2.0.0 queued\r\n"
	case line == "QUIT":
		return "221 2.0.0 bye\r\n"
	}
	return "502 5.5.1 what\r\n"
}

// twoMXWorld is a world in which dom.test has two MX hosts, mx1.dom.test
// (preference 10, 127.0.0.2) and mx2.dom.test (20, 127.0.0.3), reached at
// mx1 and mx2. The records come in the reverse of preference order, so the
// delivery must sort them.
func twoMXWorld(t *testing.T, cfg *config.Config, mx1, mx2 string) *world {
	t.Helper()
	w := newWorld(t, cfg,
		"dom.test. 60 IN MX 20 mx2.dom.test.",
		"dom.test. 60 IN MX 10 mx1.dom.test.",
		"mx1.dom.test. 60 IN A 127.0.0.2",
		"mx2.dom.test. 60 IN A 127.0.0.3",
	)
	w.mapAddr("127.0.0.2:25", mx1)
	w.mapAddr("127.0.0.3:25", mx2)
	return w
}
