package smtpc

import (
	"bufio"
	"bytes"
	"net/textproto"
	"strings"
	"testing"
)

// FuzzReadReply feeds a next hop's bytes to the reply reader and the EHLO
// parser: no panic, and a reply that parses has a valid code, no control
// bytes in its text (it ends up in logs and DSNs), and a bounded size.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250-mx.test\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
		"550 5.1.1 no\r\n", "451-4.2.1 a\r\n451 b\r\n", "999 x\r\n", "25\r\n", "250-\r\n",
		"220 \x00\x1b\r\n", "250-AUTH=LOGIN PLAIN\r\n250 OK\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := &replyBudget{r: bytes.NewReader(data)}
		c := &Client{budget: b, text: textproto.NewReader(bufio.NewReaderSize(b, 4096))}
		for range 4 {
			r, err := c.read()
			if err != nil {
				return
			}
			if r.Code < 200 || r.Code > 599 {
				t.Fatalf("code %d accepted", r.Code)
			}
			if strings.ContainsAny(r.Text(), "\r\n\x00") {
				t.Fatalf("control bytes in text %q", r.Text())
			}
			if n := len(r.Text()); n > maxReplyBytes+4096 {
				t.Fatalf("a reply of %d bytes", n)
			}
			parseEHLO(r.Lines)
		}
	})
}
