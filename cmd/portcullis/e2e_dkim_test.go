package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/portcullis-mta/portcullis/core/dkimsign"
)

// A message from a trusted client leaves `portcullis run` signed with every
// key of its From domain (RSA and Ed25519, made by `portcullis dkim keygen`),
// and both signatures verify against the records keygen printed.
func TestE2EDKIMSignedAtDelivery(t *testing.T) {
	hop := startNextHop(t, false)
	cfg, dir := e2eSetup(t, hop, nil)
	records := map[string]string{} // selector._domainkey.domain -> TXT value
	for _, k := range []struct{ sel, typ string }{{"rsa2026", "rsa"}, {"ed2026", "ed25519"}} {
		out := portcullisCLI(t, "dkim", "keygen", "example.org", k.sel, "--type", k.typ, "-c", cfg)
		key, err := dkimsign.LoadKey(filepath.Join(dir, "dkim", "example.org."+k.sel+".key"))
		if err != nil {
			t.Fatalf("keygen %s: %v", k.typ, err)
		}
		value, err := dkimsign.RecordValue(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(strings.Fields(strings.NewReplacer(`"`, "", "(", "", ")", "").Replace(out)), ""),
			strings.ReplaceAll(value, " ", "")) {
			t.Fatalf("keygen printed %q, which does not hold the key's record %q", out, value)
		}
		records[k.sel+"._domainkey.example.org"] = value
	}
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("dkim:\n  sign:\n" +
		"    - {domain: example.org, selector: rsa2026, key: dkim/example.org.rsa2026.key}\n" +
		"    - {domain: example.org, selector: ed2026, key: dkim/example.org.ed2026.key}\n")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, cfg)

	msg := "From: Alice <a@example.org>\r\nTo: bob@elsewhere.example\r\nSubject: signed at delivery\r\n" +
		"Message-ID: <dkim-e2e@example.org>\r\n\r\nHello, this body is covered by the body hash.\r\n"
	if r := sendOne(g.addr, "bob@elsewhere.example", msg); r.code != 250 {
		t.Fatalf("trusted client's message: %v\n%s", r, g.logs())
	}
	got := hop.waitFor(t, "the signed message", bySubject("signed at delivery"))
	m := findSubject(got, "signed at delivery")
	verifications, err := dkim.VerifyWithOptions(strings.NewReader(m.data), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if v, ok := records[name]; ok {
				return []string{v}, nil
			}
			return nil, &lookupError{name}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(verifications) != 2 {
		t.Fatalf("%d signatures at the next hop, want 2 (RSA and Ed25519):\n%s", len(verifications), m.data)
	}
	for _, v := range verifications {
		if v.Err != nil || v.Domain != "example.org" {
			t.Errorf("signature d=%s: %v", v.Domain, v.Err)
		}
	}
}

type lookupError struct{ name string }

func (e *lookupError) Error() string { return "no TXT record for " + e.name }
