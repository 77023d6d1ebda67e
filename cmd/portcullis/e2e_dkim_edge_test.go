package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/portcullis-mta/portcullis/core/dkimsign"
)

// dkimGateway is the e2e gateway with an Ed25519 key for example.org, made
// by `portcullis dkim keygen`, in dkim.sign. lookup finds its record.
func dkimGateway(t *testing.T, hop *nextHop) (g *gateway, lookup func(string) ([]string, error)) {
	t.Helper()
	cfg, dir := e2eSetup(t, hop, nil)
	portcullisCLI(t, "dkim", "keygen", "example.org", "ed2026", "--type", "ed25519", "-c", cfg)
	key, err := dkimsign.LoadKey(filepath.Join(dir, "dkim", "example.org.ed2026.key"))
	if err != nil {
		t.Fatal(err)
	}
	record, err := dkimsign.RecordValue(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	lookup = func(name string) ([]string, error) {
		if name == "ed2026._domainkey.example.org" {
			return []string{record}, nil
		}
		return nil, &lookupError{name}
	}
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("dkim:\n  sign:\n    - {domain: example.org, selector: ed2026, key: dkim/example.org.ed2026.key}\n")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return startGateway(t, cfg), lookup
}

// A trusted client's message whose header is over the 1 MiB the signer
// reads (a script's log with no empty line) is delivered unsigned at once,
// with one warning naming it; it was deferred with "451 4.3.0 signing
// failed" at every attempt, and nothing said why, until max_age bounced it.
func TestE2EDKIMHeaderTooLarge(t *testing.T) {
	hop := startNextHop(t, false)
	g, _ := dkimGateway(t, hop)
	big := "From: <a@example.org>\r\nTo: <b@elsewhere.example>\r\nSubject: big log\r\n" +
		strings.Repeat("2026-11-28 03:00:00 some log line here\r\n", 60000)
	r := sendOne(g.addr, "b@elsewhere.example", big)
	if r.code != 250 {
		t.Fatalf("big header: %v\n%s", r, g.logs())
	}
	m := findSubject(hop.waitFor(t, "the big message", bySubject("big log")), "big log")
	if strings.Contains(m.data, "DKIM-Signature") {
		t.Error("a header over 1 MiB was signed")
	}
	var warned int
	for _, l := range strings.Split(g.logs(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "unsigned") && strings.Contains(l, r.queueID()) &&
			strings.Contains(l, "header over 1 MiB") {
			warned++
		}
	}
	if warned != 1 {
		t.Errorf("%d warnings naming %s and why, want 1:\n%s", warned, r.queueID(), g.logs())
	}
}

// A message that is a header alone, with no empty line (RFC 5322 3.5), is
// signed with an empty body and reaches the next hop with the empty line,
// its signature verifying there; it went out unsigned.
func TestE2EDKIMHeaderOnly(t *testing.T) {
	hop := startNextHop(t, false)
	g, lookup := dkimGateway(t, hop)
	msg := "From: <a@example.org>\r\nTo: <b@elsewhere.example>\r\nSubject: header only\r\nMessage-ID: <ho@example.org>\r\n"
	if r := sendOne(g.addr, "b@elsewhere.example", msg); r.code != 250 {
		t.Fatalf("header only: %v\n%s", r, g.logs())
	}
	m := findSubject(hop.waitFor(t, "the header-only message", bySubject("header only")), "header only")
	if !strings.HasSuffix(m.data, msg+"\r\n") {
		t.Errorf("the next hop got %q", m.data)
	}
	vs, err := dkim.VerifyWithOptions(strings.NewReader(m.data), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.org" {
		t.Errorf("signatures at the next hop: %d (%+v)\n%s", len(vs), vs, m.data)
	}
}
