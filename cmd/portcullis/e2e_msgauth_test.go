package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// msgauthGateway runs `portcullis run` with examples/rules/msgauth.yaml
// unchanged, against dns, delivering to hop.
func msgauthGateway(t *testing.T, hop *nextHop, dns *dnstest.Server) *gateway {
	t.Helper()
	rules, err := os.ReadFile("../../examples/rules/msgauth.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "portcullis.yaml")
	text := strings.NewReplacer("%HOP%", hop.addr, "%DNS%", dns.Addr).Replace(e2eYAML)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o600); err != nil {
		t.Fatal(err)
	}
	return startGateway(t, cfg)
}

// sendOutside sends msg from 127.0.0.2, outside the gateway's trusted
// 127.0.0.1/32 (so msgauth checks it), with MAIL FROM mailFrom, with
// SMTPUTF8 when utf8 is set.
func sendOutside(t *testing.T, addr, mailFrom, rcpt, msg string, utf8 bool) reply {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	c := smtp.NewClient(conn)
	defer c.Close()
	var opts *smtp.MailOptions
	if utf8 {
		opts = &smtp.MailOptions{UTF8: true}
	}
	r := sendFrom(c, mailFrom, opts, rcpt, msg, true)
	_ = c.Quit()
	return r
}

// Stages are given the first 256 KiB of the header only; msgauth reads
// it whole. A spoof of a p=reject domain behind 300 KB of header fields is
// refused like one without them, and a forged Authentication-Results
// field naming our authserv-id behind 270 KB of them never reaches the
// next hop.
func TestE2EMsgauthBigHeader(t *testing.T) {
	hop := startNextHop(t, false)
	dns := dnstest.New(t,
		`_dmarc.bank.test. 300 IN TXT "v=DMARC1; p=reject"`,
		`bank.test. 300 IN TXT "v=spf1 -all"`,
	)
	g := msgauthGateway(t, hop, dns)
	line := "X-Tracking: " + strings.Repeat("a", 200) + "\r\n"
	spoof := strings.Repeat(line, 1400) + "From: CEO <ceo@bank.test>\r\nTo: <u@example.test>\r\nSubject: spoof\r\n\r\nPlease wire the money.\r\n"
	if r := sendOutside(t, g.addr, "spoofer@attacker.example", "u@example.test", spoof, false); r.code != 550 {
		t.Errorf("spoof behind 300 KB of header: %v, want 550", r)
	}
	forged := strings.Repeat(line, 1300) +
		"Authentication-Results: mx.example.test; dkim=pass header.d=bank.test; dmarc=pass header.from=bank.test\r\n" +
		"From: <x@attacker.example>\r\nTo: <u@example.test>\r\nSubject: forged\r\n\r\nhi\r\n"
	if r := sendOutside(t, g.addr, "x@attacker.example", "u@example.test", forged, false); r.code != 250 {
		t.Fatalf("forged Authentication-Results: %v\n%s", r, g.logs())
	}
	m := findSubject(hop.waitFor(t, "the forged one", bySubject("forged")), "forged")
	if strings.Contains(m.data, "dmarc=pass header.from=bank.test") {
		t.Error("the forged Authentication-Results field reached the next hop")
	}
	if n := strings.Count(m.data, "Authentication-Results: mx.example.test;"); n != 1 {
		t.Errorf("%d Authentication-Results fields naming mx.example.test, want ours alone", n)
	}
}

// The DMARC policy of an internationalised domain is at its A-labels (RFC
// 8616 6): an SMTPUTF8 spoof naming it in U-labels is refused like one
// naming it in A-labels.
func TestE2EMsgauthIDN(t *testing.T) {
	hop := startNextHop(t, false)
	dns := dnstest.New(t,
		`_dmarc.xn--r8jz45g.test. 300 IN TXT "v=DMARC1; p=reject"`,
		`xn--r8jz45g.test. 300 IN TXT "v=spf1 -all"`,
	)
	g := msgauthGateway(t, hop, dns)
	for _, from := range []string{"ceo@xn--r8jz45g.test", "ceo@例え.test"} {
		msg := "From: CEO <" + from + ">\r\nTo: <u@example.test>\r\nSubject: wire\r\n\r\nPlease wire the money.\r\n"
		r := sendOutside(t, g.addr, "spoofer@attacker.example", "u@example.test", msg, true)
		if r.code != 550 || !strings.Contains(r.text, "xn--r8jz45g.test") {
			t.Errorf("From %s: %v, want 550 for xn--r8jz45g.test's policy", from, r)
		}
	}
}
