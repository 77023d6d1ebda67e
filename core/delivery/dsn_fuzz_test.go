package delivery

import (
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/queue"
)

// FuzzDSN composes DSNs from arbitrary original messages (their header is
// cut out of attacker bytes) and arbitrary next-hop replies: the result
// always parses as multipart/report with three parts, and nothing from the
// reply or the addresses can start a header field of its own.
func FuzzDSN(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody\r\n"), "550 5.1.1 no such user", "HDRS", "b@y")
	f.Add([]byte("no header at all"), "451 4.4.1 x\r\nInjected: 1", "", "b@y\r\nBcc: c@z")
	f.Add([]byte("A: b\n\nLF only\n"), "", "FULL", "\u3042@\u4f8b.jp")
	f.Fuzz(func(t *testing.T, orig []byte, reply, ret, rcpt string) {
		for _, kind := range []dsnKind{dsnFailed, dsnDelayed, dsnRelayed} {
			d := &dsn{kind: kind, hostname: "gw.test", now: time.Unix(1e9, 0), retryEnd: time.Unix(2e9, 0), id: "D1",
				env:   &queue.Envelope{ID: "Q1", From: rcpt, DSNRet: ret, DSNEnvID: reply, Received: time.Unix(1e9, 0)},
				rcpts: []*queue.Recipient{{Addr: rcpt, LastReply: reply, ORCPT: "rfc822;" + reply, LastHop: reply + "[1.2.3.4]"}}}
			var b strings.Builder
			if err := d.write(&b, strings.NewReader(string(orig))); err != nil {
				t.Fatal(err)
			}
			msg, err := mail.ReadMessage(strings.NewReader(b.String()))
			if err != nil {
				t.Fatalf("DSN does not parse: %v", err)
			}
			if len(msg.Header) != 8 {
				t.Fatalf("DSN header has %d fields, want 8: %v", len(msg.Header), msg.Header)
			}
			_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
			if err != nil {
				t.Fatal(err)
			}
			mr := multipart.NewReader(msg.Body, params["boundary"])
			parts := 0
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("part %d: %v", parts, err)
				}
				body, _ := io.ReadAll(p)
				if parts == 1 {
					checkStatusFields(t, string(body))
				}
				parts++
			}
			if parts != 3 {
				t.Fatalf("%d parts", parts)
			}
		}
	})
}

// checkStatusFields: every line of the delivery-status part is blank or a
// field RFC 3464 (or we) define: an injected line would be neither.
func checkStatusFields(t *testing.T, body string) {
	known := map[string]bool{"Reporting-MTA": true, "X-Portcullis-Queue-ID": true, "Original-Envelope-Id": true,
		"Arrival-Date": true, "Final-Recipient": true, "Original-Recipient": true, "Action": true, "Status": true,
		"Remote-MTA": true, "Diagnostic-Code": true, "Last-Attempt-Date": true, "Will-Retry-Until": true}
	for _, l := range strings.Split(body, "\r\n") {
		name, _, ok := strings.Cut(l, ":")
		if l != "" && (!ok || !known[name]) {
			t.Fatalf("unexpected line in delivery-status: %q", l)
		}
	}
}
