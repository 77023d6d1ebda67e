package smtpc

import (
	"bufio"
	"bytes"
	"net/textproto"
	"strings"
	"testing"
)

// FuzzReadReply feeds a next hop's bytes to the reply reader and the EHLO
// parser: no panic, and a reply that parses has a valid code and no control
// bytes in its text (it ends up in logs and DSNs).
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250-mx.test\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
		"550 5.1.1 no\r\n", "451-4.2.1 a\r\n451 b\r\n", "999 x\r\n", "25\r\n", "250-\r\n",
		"220 \x00\x1b\r\n", "250-AUTH=LOGIN PLAIN\r\n250 OK\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &Client{text: textproto.NewReader(bufio.NewReader(bytes.NewReader(data)))}
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
			parseEHLO(r.Lines)
		}
	})
}

// FuzzCRLF checks that no bare CR or LF ever leaves crlfWriter, and that
// nothing but line ends changes.
func FuzzCRLF(f *testing.F) {
	for _, s := range []string{"a\r\nb", "\r", "\n", "\r\r\n\n", "x\ry\nz"} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk int) {
		if chunk <= 0 {
			chunk = 1
		}
		var b bytes.Buffer
		w := &crlfWriter{w: &b}
		for i := 0; i < len(data); i += chunk {
			w.Write(data[i:min(i+chunk, len(data))])
		}
		w.Close()
		out := b.Bytes()
		for i, c := range out {
			if c == '\r' && (i+1 >= len(out) || out[i+1] != '\n') {
				t.Fatalf("bare CR at %d in %q", i, out)
			}
			if c == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("bare LF at %d in %q", i, out)
			}
		}
		strip := func(p []byte) []byte {
			return bytes.ReplaceAll(bytes.ReplaceAll(p, []byte("\r"), nil), []byte("\n"), nil)
		}
		if !bytes.Equal(strip(out), strip(data)) {
			t.Fatalf("content changed: %q -> %q", data, out)
		}
	})
}
