package main

import (
	"os"
	"strings"
	"testing"
)

// dkimGateway is the e2e gateway with an Ed25519 key for example.org, made
// by `portcullis dkim keygen`, in dkim.sign.
func dkimGateway(t *testing.T, hop *nextHop) *gateway {
	t.Helper()
	cfg, _ := e2eSetup(t, hop, nil)
	portcullisCLI(t, "dkim", "keygen", "example.org", "ed2026", "--type", "ed25519", "-c", cfg)
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("dkim:\n  sign:\n    - {domain: example.org, selector: ed2026, key: dkim/example.org.ed2026.key}\n")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return startGateway(t, cfg)
}

// A trusted client's message whose header is over the 1 MiB the signer
// reads (a script's log with no empty line) is delivered unsigned at once,
// with one warning naming it; it was deferred with "451 4.3.0 signing
// failed" at every attempt, and nothing said why, until max_age bounced it.
func TestE2EDKIMHeaderTooLarge(t *testing.T) {
	hop := startNextHop(t, false)
	g := dkimGateway(t, hop)
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
