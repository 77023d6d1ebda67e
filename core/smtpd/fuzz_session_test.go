package smtpd

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/queue"
)

var replyLineRE = regexp.MustCompile(`^[2-5][0-9][0-9][ -]`)

// FuzzSession sends arbitrary client bytes to a running server. Whatever
// they are: every reply line is a well-formed SMTP reply, and every message
// that reached the queue is strict CRLF without NUL (nothing smuggled).
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@example.test>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n",
		"EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@example.test>\r\nDATA\r\n",
		"HELO a\r\nVRFY x\r\nBDAT 10 LAST\r\n0123456789STARTTLS\r\nRSET\r\n",
		"EHLO a\r\nAUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\n",
	} {
		f.Add([]byte(s))
	}
	cfg := testConfig(f)
	cfg.Limits.CommandTimeout = 2_000_000_000
	cfg.Limits.DataTimeout = 2_000_000_000
	q, err := queue.Open(f.TempDir(), queue.Options{NoSync: true, Poll: -1})
	if err != nil {
		f.Fatal(err)
	}
	ts := startServer(f, cfg, func(d *Deps) {
		d.Queue = q
		d.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		d.Policy = &testPolicy{trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, local: []string{"example.test"}}
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", ts.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			_, _ = c.Write(in)
			_, _ = c.Write([]byte("\r\n.\r\nQUIT\r\n"))
		}()
		out, _ := io.ReadAll(c)
		for _, line := range strings.Split(strings.TrimSuffix(string(out), "\r\n"), "\r\n") {
			if line != "" && !replyLineRE.MatchString(line) {
				t.Fatalf("malformed reply line %q", line)
			}
		}
		envs, _ := q.List()
		for _, env := range envs {
			rc, err := q.Open(env.ID)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if err := checkLines(b); err != nil {
				t.Fatalf("queued message with bare CR/LF/NUL: %q", b)
			}
			_ = q.Delete(env.ID)
		}
	})
}
