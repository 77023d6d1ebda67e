package delivery

import (
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"testing"
)

// closedPort returns a loopback address where nothing listens.
func closedPort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// parsedDSN is a DSN taken apart: its header and the text of each part.
type parsedDSN struct {
	all   string
	parts []string
	types []string
}

// parseDSN checks the RFC 3464/6522 structure: multipart/report with
// report-type delivery-status, a text part, a message/delivery-status part,
// and the original (message/rfc822 or text/rfc822-headers).
func parseDSN(t *testing.T, m received) *parsedDSN {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(m.data))
	if err != nil {
		t.Fatalf("DSN does not parse: %v\n%s", err, m.data)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	global := params["report-type"] == "global-delivery-status" // RFC 6533
	if err != nil || mt != "multipart/report" || (params["report-type"] != "delivery-status" && !global) {
		t.Fatalf("DSN Content-Type %q", msg.Header.Get("Content-Type"))
	}
	d := &parsedDSN{all: m.data}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("DSN part: %v", err)
		}
		b, _ := io.ReadAll(p)
		d.parts = append(d.parts, string(b))
		d.types = append(d.types, p.Header.Get("Content-Type"))
	}
	switch {
	case len(d.types) != 3:
		t.Fatalf("DSN parts %q", d.types)
	case global && (d.types[1] != "message/global-delivery-status" ||
		(d.types[2] != "message/global" && d.types[2] != "message/global-headers")):
		t.Fatalf("global DSN parts %q", d.types)
	case !global && (d.types[1] != "message/delivery-status" ||
		(d.types[2] != "message/rfc822" && d.types[2] != "text/rfc822-headers")):
		t.Fatalf("DSN parts %q", d.types)
	}
	if msg.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Error("DSN lacks Auto-Submitted: auto-replied")
	}
	return d
}

func (d *parsedDSN) want(t *testing.T, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(d.all, s) {
			t.Errorf("DSN lacks %q:\n%s", s, d.all)
		}
	}
}

func (d *parsedDSN) wantNot(t *testing.T, subs ...string) {
	t.Helper()
	status := d.parts[1]
	for _, s := range subs {
		if strings.Contains(status, s) {
			t.Errorf("delivery-status part mentions %q:\n%s", s, status)
		}
	}
}
