package smtpc

import (
	"bufio"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

// scripted runs a fake server on 127.0.0.1:0: for each line it reads it
// sends reply(line); the DATA body is collected into body.
func scripted(t *testing.T, greeting string, reply func(line string) string) (*Client, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	bodies := make(chan string, 4)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		c.Write([]byte(greeting))
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			r := reply(line)
			c.Write([]byte(r))
			if strings.HasPrefix(r, "354") {
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
				bodies <- b.String()
				c.Write([]byte(reply(".")))
			}
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := New(conn, 5*time.Second)
	t.Cleanup(func() { c.Close() })
	return c, bodies
}

func mixedServer(pipelining bool) func(string) string {
	return func(line string) string {
		switch {
		case strings.HasPrefix(line, "EHLO"):
			if pipelining {
				return "250-mx.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n"
			}
			return "250-mx.test\r\n250 ENHANCEDSTATUSCODES\r\n"
		case strings.HasPrefix(line, "MAIL"):
			return "250 2.1.0 ok\r\n"
		case strings.Contains(line, "<ok"):
			return "250 2.1.5 ok\r\n"
		case strings.Contains(line, "<later"):
			return "451 4.2.1 try later\r\n"
		case strings.Contains(line, "<gone"):
			return "550-5.1.1 no such user\r\n550 5.1.1 really\r\n"
		case line == "DATA":
			return "354 go on\r\n"
		case line == ".":
			return "250 2.0.0 queued as X\r\n"
		case line == "RSET":
			return "250 2.0.0 reset\r\n"
		}
		return "502 5.5.1 what\r\n"
	}
}

func TestSendPerRecipientReplies(t *testing.T) {
	for _, pipe := range []bool{true, false} {
		t.Run(map[bool]string{true: "pipelining", false: "lockstep"}[pipe], func(t *testing.T) {
			c, bodies := scripted(t, "220 mx.test ESMTP\r\n", mixedServer(pipe))
			if err := c.Greet(); err != nil {
				t.Fatal(err)
			}
			if err := c.Hello("gw.test"); err != nil {
				t.Fatal(err)
			}
			body := "Subject: x\r\n\r\n.leading dot\nbare LF\rbare CR\r\nend"
			rcpts := []Rcpt{{Addr: "ok1@x"}, {Addr: "later@x"}, {Addr: "gone@x"}, {Addr: "ok2@x"}}
			res, err := c.Send("s@y", nil, rcpts, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, r := range res.Rcpts {
				got = append(got, r.String())
				if want := i == 0 || i == 3; res.Delivered(i) != want {
					t.Errorf("Delivered(%d) = %v", i, !want)
				}
			}
			want := []string{"250 2.1.5 ok", "451 4.2.1 try later", "550 5.1.1 no such user; really", "250 2.1.5 ok"}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("rcpt replies\n got %q\nwant %q", got, want)
			}
			wantBody := "Subject: x\r\n\r\n..leading dot\r\nbare LF\r\nbare CR\r\nend\r\n"
			if b := <-bodies; b != wantBody {
				t.Errorf("body on the wire\n got %q\nwant %q", b, wantBody)
			}
		})
	}
}

// TestSendOther2xxAfterDot: a hop that answers the final dot with a 2xx
// other than 250 has taken the message; counting it undelivered would
// send it again (Postfix takes any 2xx there too). A 4xx there does not
// deliver.
func TestSendOther2xxAfterDot(t *testing.T) {
	for dot, want := range map[string]bool{"251 2.0.0 queued\r\n": true, "252 ok\r\n": true, "451 4.3.0 later\r\n": false} {
		c, _ := scripted(t, "220 mx.test\r\n", func(line string) string {
			switch {
			case strings.HasPrefix(line, "EHLO"):
				return "250 mx.test\r\n"
			case line == "DATA":
				return "354 go on\r\n"
			case line == ".":
				return dot
			}
			return "250 ok\r\n"
		})
		if err := c.Greet(); err != nil {
			t.Fatal(err)
		}
		c.Hello("gw.test")
		res, err := c.Send("s@y", nil, []Rcpt{{Addr: "a@x"}}, strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Delivered(0) != want {
			t.Errorf("%q after the dot: delivered %v, want %v", dot, res.Delivered(0), want)
		}
	}
}

func TestSendNoRecipientAccepted(t *testing.T) {
	c, _ := scripted(t, "220 mx.test\r\n", func(line string) string {
		switch {
		case strings.HasPrefix(line, "EHLO"):
			return "250-mx.test\r\n250 PIPELINING\r\n"
		case strings.HasPrefix(line, "RCPT"):
			return "550 5.1.1 no\r\n"
		case line == "DATA":
			return "554 5.5.1 no valid recipients\r\n"
		}
		return "250 ok\r\n"
	})
	if err := c.Greet(); err != nil {
		t.Fatal(err)
	}
	c.Hello("gw.test")
	res, err := c.Send("s@y", nil, []Rcpt{{Addr: "a@x"}}, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered(0) || res.Rcpts[0].Code != 550 {
		t.Fatalf("got %+v", res)
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		name string
		code int
		msg  string
		want Reply
	}{
		{"enhanced", 550, "5.1.1 no such user", Reply{550, "5.1.1", []string{"no such user"}, false}},
		{"none", 250, "ok", Reply{250, "", []string{"ok"}, false}},
		{"class mismatch kept as text", 451, "5.1.1 odd", Reply{451, "", []string{"5.1.1 odd"}, false}},
		{"multi-line", 250, "2.0.0 a\n2.0.0 b", Reply{250, "2.0.0", []string{"a", "b"}, false}},
		{"not a code", 550, "5.1 x", Reply{550, "", []string{"5.1 x"}, false}},
		{"code on a later line only", 550, "Mailbox unavailable\n5.1.1 no such user", Reply{550, "5.1.1", []string{"Mailbox unavailable", "no such user"}, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseReply(tt.code, tt.msg); !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

// TestSendMailRefusedPipelined: a pipelining server that refuses MAIL but
// then takes RCPT and DATA (354) anyway gets an empty message, not the body
// (RFC 2920 3.1: the client checks every reply), and the MAIL refusal is
// the transaction's verdict: nothing is delivered.
func TestSendMailRefusedPipelined(t *testing.T) {
	c, bodies := scripted(t, "220 mx.test\r\n", func(line string) string {
		switch {
		case strings.HasPrefix(line, "EHLO"):
			return "250-mx.test\r\n250 PIPELINING\r\n"
		case strings.HasPrefix(line, "MAIL"):
			return "451 4.3.0 sender temporarily refused\r\n"
		case line == "DATA":
			return "354 go ahead\r\n"
		}
		return "250 ok\r\n"
	})
	if err := c.Greet(); err != nil {
		t.Fatal(err)
	}
	c.Hello("gw.test")
	res, err := c.Send("s@y", nil, []Rcpt{{Addr: "a@x"}}, strings.NewReader("the body\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered(0) || res.Data == nil || res.Data.Code != 451 {
		t.Errorf("MAIL refused, DATA taken anyway: delivered %v, verdict %+v; want not delivered, the 451", res.Delivered(0), res.Data)
	}
	if b := <-bodies; b != "" {
		t.Errorf("body sent after a refused MAIL: %q", b)
	}
}

// TestReplyBounded: a server whose reply never ends (one line without a
// line end, or continuation lines without a last one) ends the session
// after maxReplyBytes; it does not grow the daemon without bound (1 GiB
// was read whole). A long but finite reply below the bound is read.
func TestReplyBounded(t *testing.T) {
	for name, endless := range map[string]func(c net.Conn){
		"one line": func(c net.Conn) {
			c.Write([]byte("220 "))
			chunk := []byte(strings.Repeat("x", 64<<10))
			for {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		},
		"continuation lines": func(c net.Conn) {
			line := []byte("220-" + strings.Repeat("y", 500) + "\r\n")
			for {
				if _, err := c.Write(line); err != nil {
					return
				}
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				endless(c)
			}()
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c := New(conn, 5*time.Second)
			defer c.Close()
			if err := c.Greet(); !errors.Is(err, errReplyTooLong) {
				t.Fatalf("greeting without end: %v, want %v", err, errReplyTooLong)
			}
		})
	}
	long := "220-" + strings.Repeat("z", 500) + "\r\n"
	c, _ := scripted(t, strings.Repeat(long, 60)+"220 mx.test ready\r\n", mixedServer(true))
	if err := c.Greet(); err != nil {
		t.Fatalf("a 30 KB greeting: %v", err)
	}
}

// RFC 5321 4.2: the text after a reply code is optional, so "250" alone is
// a whole reply, as the last line of a multi-line one too. Read as a
// malformed reply, a bare "250" to the final dot made a delivered message
// look lost, and sent it again at every retry.
func TestReplyWithoutText(t *testing.T) {
	c, _ := scripted(t, "220\r\n", func(line string) string {
		switch {
		case strings.HasPrefix(line, "EHLO"):
			return "250-mx.test\r\n250\r\n"
		case line == "DATA":
			return "354\r\n"
		case strings.HasPrefix(line, "RCPT TO:<gone"):
			return "550\r\n"
		}
		return "250\r\n"
	})
	if err := c.Greet(); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	if err := c.Hello("gw.test"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	res, err := c.Send("a@x.test", nil, []Rcpt{{Addr: "ok@y.test"}, {Addr: "gone@y.test"}}, strings.NewReader("Subject: x\r\n\r\nhi\r\n"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if !res.Delivered(0) || res.Delivered(1) || res.Rcpts[1].String() != "550" || res.Data.String() != "250" {
		t.Errorf("result %+v, data %v, rcpts %v %v", res, res.Data, res.Rcpts[0], res.Rcpts[1])
	}
}
