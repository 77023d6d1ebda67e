package msgauth

import (
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// FuzzParseRecord: DMARC TXT records come from any DNS zone.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{"v=DMARC1; p=reject", "v=DMARC1;p=none;sp=quarantine;pct=50;adkim=s;aspf=r;rua=mailto:a@b",
		"v=DMARC1; p=x; rua=mailto:", "v=DMARC1", ";;;=", "v=DMARC1; pct=-1; p=reject"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		r, err := parseRecord(txt)
		if err != nil {
			return
		}
		if policy(r.p) == "" || (r.sp != "" && policy(r.sp) == "") || r.pct < 0 || r.pct > 100 {
			t.Fatalf("%q gave an invalid record %+v", txt, r)
		}
		if (r.adkim != 'r' && r.adkim != 's') || (r.aspf != 'r' && r.aspf != 's') {
			t.Fatalf("%q gave bad alignment modes %+v", txt, r)
		}
	})
}

// FuzzFromDomain: the From field is the sender's bytes.
func FuzzFromDomain(f *testing.F) {
	for _, s := range []string{"a@example.test", "=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?= <a@example.co.jp>",
		"a@x.test, b@x.test", "a@x.test, b@y.test", "<@route:a@x.test>", "\"q\\\"x\" <a@[192.0.2.1]>", "group: a@x.test;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, from string) {
		ds, err := fromDomains([]sdk.HeaderField{{Name: "From", Value: from}})
		if err != nil {
			return
		}
		if len(ds) == 0 || len(ds) > maxFromDomains {
			t.Fatalf("%q gave %d domains", from, len(ds))
		}
		for _, d := range ds {
			if d == "" || d != strings.ToLower(d) || !validDomain(d) {
				t.Fatalf("%q gave domain %q", from, d)
			}
			_ = orgDomain(d)
		}
	})
}

// FuzzHeaderEdits: inbound Authentication-Results values are the
// sender's bytes. Only fields naming our authserv-id may go; every other
// one is kept, and ours comes first.
func FuzzHeaderEdits(f *testing.F) {
	for _, s := range []string{"mx.portcullis.test; spf=pass", "MX.PORTCULLIS.TEST (c) ; dkim=pass", "other.test; none",
		"mx.portcullis.test 1; dmarc=fail", "(comment) mx.portcullis.test; x", "", ";;", "mx.portcullis.test.; spf=pass"} {
		f.Add(s, "relay.other.test; spf=fail")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		h := []sdk.HeaderField{{Name: "Authentication-Results", Value: a}, {Name: "authentication-results", Value: b}}
		edits, forged := headerEdits(h, authservID, "ours")
		kept := 0
		for _, e := range edits[1:] {
			if e.Op == sdk.HeaderAdd && e.Value != "ours" {
				kept++
				if strings.EqualFold(servID(e.Value), authservID) {
					t.Fatalf("forged field %q kept", e.Value)
				}
			}
		}
		if forged == 0 && (len(edits) != 1 || edits[0].Value != "ours") {
			t.Fatalf("edits without forgery: %+v", edits)
		}
		if forged > 0 && (edits[0].Op != sdk.HeaderRemove || edits[1].Value != "ours" || kept+forged != 2) {
			t.Fatalf("edits %+v, forged %d", edits, forged)
		}
	})
}
