package smtpd

import (
	"bytes"
	"crypto/tls"
	"io"
	"strings"
	"testing"
)

// TestOpenRelay tries the classic relay tricks (the ones mail-abuse.org's
// relay tester used) from an untrusted client: none may be accepted.
func TestOpenRelay(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	const R, V, IP = "example.test", "victim.example", "127.0.0.9"
	rcpts := []string{
		"u%" + V + "@" + R, "u%" + V + "@[" + IP + "]", `"u@` + V + `"`, `"u%` + V + `"`,
		`"u@` + V + `"@` + R, "u@" + V + "@" + R, "@" + R + ":u@" + V, V + "!u", V + "!u@" + R,
		"u@" + V + ".", "u@" + V,
	}
	senders := []string{"", "f@" + V, "f@" + R, "f@[" + IP + "]"}
	for _, from := range senders {
		for _, rc := range rcpts {
			for _, v := range []string{rc, strings.ToUpper(rc)} {
				t.Run(from+"->"+v, func(t *testing.T) {
					r := newRaw(t, ts.addr(), 2)
					r.expect("220")
					r.cmd("EHLO attacker.example", "250")
					r.cmd("MAIL FROM:<"+from+">", "250")
					r.send("RCPT TO:<" + v + ">\r\n")
					if got := r.reply(); got[0] == '2' {
						t.Fatalf("relay accepted: %q", got)
					}
				})
			}
		}
	}
	if n := len(ts.queued(t)); n != 0 {
		t.Fatalf("%d messages queued", n)
	}
}

// TestSmuggling sends the known SMTP smuggling end-of-data variants inside
// DATA: each gets 550 and nothing is queued; the clean one queues exactly
// one message.
func TestSmuggling(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	tests := []struct{ name, sep string }{
		{"LF.LF", "\n.\n"},
		{"LF.CRLF", "\n.\r\n"},
		{"CR.CRLF", "\r.\r\n"},
		{"CRLF.CR", "\r\n.\r"},
		{"CRLF NUL.CRLF", "\r\n\x00.\r\n"},
		{"bare LF in text", "\nline\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRaw(t, ts.addr(), 2)
			r.toData()
			r.send("Subject: x\r\n\r\nbody" + tt.sep + "MAIL FROM:<evil@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nsmuggled\r\n.\r\n")
			r.expect("550 5.6.0 Message contains bare CR, bare LF or NUL")
			r.cmd("QUIT", "221")
			if n := len(ts.queued(t)); n != 0 {
				t.Fatalf("%d messages queued", n)
			}
		})
	}
	t.Run("clean", func(t *testing.T) {
		r := newRaw(t, ts.addr(), 2)
		r.toData()
		r.send("Subject: x\r\n\r\nbody\r\n..leading dot\r\n.\r\n")
		r.expect("250 2.0.0 ")
		envs := ts.queued(t)
		if len(envs) != 1 {
			t.Fatalf("%d messages queued, want 1", len(envs))
		}
		// Stored as sent, less the transparency dot (RFC 5321 4.5.2).
		rc, err := ts.q.Open(envs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		if !bytes.HasSuffix(b, []byte("\r\nSubject: x\r\n\r\nbody\r\n.leading dot\r\n")) {
			t.Fatalf("stored %q", b)
		}
	})
}

// TestEarlyData: a client that sends its message before the 354 reply
// (RFC 2920 3.1 forbids it) gets nothing queued.
func TestEarlyData(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	r := newRaw(t, ts.addr(), 2)
	r.hello()
	r.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n")
	r.expect("250")
	r.expect("250")
	r.expect("354")
	r.expect("554 5.5.0")
	if n := len(ts.queued(t)); n != 0 {
		t.Fatalf("%d messages queued", n)
	}
}

// TestSTARTTLSInjection: plaintext pipelined after STARTTLS is discarded,
// not answered inside the TLS session (CVE-2011-0411 class).
func TestSTARTTLSInjection(t *testing.T) {
	cfg, pool := starttlsConfig(t)
	ts := startServer(t, cfg, nil)
	r := newRaw(t, ts.addr(), 2)
	r.expect("220")
	if ehlo := r.cmd("EHLO c.example.org", "250"); !strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("no STARTTLS offered:\n%s", ehlo)
	}
	r.send("STARTTLS\r\nRSET\r\n")
	r.expect("220 2.0.0")
	tc := tls.Client(r.c, &tls.Config{ServerName: "mx.example.test", RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	tr := &rawClient{t: t, c: tc, br: newReader(tc)}
	// The first reply inside TLS must answer our NOOP, not the injected RSET.
	tr.cmd("NOOP", "250 2.0.0 I have successfully done nothing")
	tr.cmd("MAIL FROM:<a@example.org>", "503 5.5.1")
	ehlo := tr.cmd("EHLO c.example.org", "250")
	if strings.Contains(ehlo, "STARTTLS") {
		t.Fatal("STARTTLS offered again under TLS")
	}
	tr.cmd("MAIL FROM:<a@example.org>", "250")
	tr.cmd("RCPT TO:<bob@example.test>", "250")
	tr.cmd("DATA", "354")
	tr.send(message("tls") + ".\r\n")
	id := strings.Fields(tr.expect("250 2.0.0"))[2]
	checkReceivedProto(t, ts, id, "with ESMTPS id")
	if !strings.Contains(ts.logs.String(), "discarded plaintext sent after STARTTLS") {
		t.Fatal("injection not logged")
	}
}

func TestImplicitTLS(t *testing.T) {
	cfg := testConfig(t)
	cert, key, pool := writeCert(t, t.TempDir())
	cfg.TLS.Cert, cfg.TLS.Key = cert, key
	cfg.Listeners[0].TLS = "implicit"
	ts := startServer(t, cfg, nil)
	c := dialFrom(t, ts.addr(), 2)
	tc := tls.Client(c, &tls.Config{ServerName: "mx.example.test", RootCAs: pool, MinVersion: tls.VersionTLS12})
	r := &rawClient{t: t, c: tc, br: newReader(tc)}
	r.expect("220 mx.example.test ESMTP")
	r.cmd("EHLO c.example.org", "250")
	r.cmd("AUTH PLAIN "+b64("\x00alice\x00secret"), "235")
	r.cmd("MAIL FROM:<a@example.org>", "250")
	r.cmd("RCPT TO:<x@elsewhere.example>", "250")
	r.cmd("DATA", "354")
	r.send(message("implicit") + ".\r\n")
	id := strings.Fields(r.expect("250 2.0.0"))[2]
	checkReceivedProto(t, ts, id, "with ESMTPSA id")
	checkReceivedProto(t, ts, id, "\t(using TLS 1.3 with cipher TLS_")
}
