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
		d, err := fromDomain([]sdk.HeaderField{{Name: "From", Value: from}})
		if err != nil {
			return
		}
		if d == "" || d != strings.ToLower(d) || !validDomain(d) {
			t.Fatalf("%q gave domain %q", from, d)
		}
		_ = orgDomain(d)
	})
}
