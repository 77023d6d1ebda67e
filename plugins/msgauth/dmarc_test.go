package msgauth

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// dmarcZone: example.test publishes p=reject; its mail comes from
// 192.0.2.10 and is signed by example.test. example.co.jp publishes only
// at the organizational domain, with a stricter sp for subdomains.
func dmarcZone(t testing.TB) *dnsutiltest.Server {
	rk, ek := keys(t)
	srv := dnsutiltest.New(t,
		`example.test. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`bounce.example.test. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`_dmarc.example.test. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:d@example.test"`,
		`strict.test. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`_dmarc.strict.test. 300 IN TXT "v=DMARC1; p=reject; adkim=s; aspf=s"`,
		`mail.strict.test. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`other.test. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`_dmarc.example.co.jp. 300 IN TXT "v=DMARC1; p=none; sp=reject"`,
		`_dmarc.quar.test. 300 IN TXT "v=DMARC1; p=quarantine"`,
		`_dmarc.pct.test. 300 IN TXT "v=DMARC1; p=reject; pct=20"`,
		`_dmarc.two.test. 300 IN TXT "v=DMARC1; p=reject"`,
		`_dmarc.two.test. 300 IN TXT "v=DMARC1; p=none"`,
		`_dmarc.junk.test. 300 IN TXT "v=spf1 -all"`,
		`_dmarc.two.example.test. 300 IN TXT "v=DMARC1; p=none"`,
		`_dmarc.two.example.test. 300 IN TXT "v=DMARC1; p=quarantine"`,
		`_dmarc.badp.example.test. 300 IN TXT "v=DMARC1; p=bogus"`,
		`_dmarc.other.example.test. 300 IN TXT "not dmarc"`,
		keyRecord(t, "example.test", "rsa", rk),
		keyRecord(t, "mail.strict.test", "ed", ek),
		keyRecord(t, "other.test", "ed", ek),
	)
	srv.ServFail("_dmarc.temp.test")
	srv.ServFail("down._domainkey.example.test")
	srv.ServFail("down._domainkey.other.test")
	srv.ServFail("spfdown.example.test")
	return srv
}

func TestDMARC(t *testing.T) {
	srv := dmarcZone(t)
	rk, ek := keys(t)
	none := time.Time{}
	tests := []struct {
		name        string
		raw, from   string // message, MAIL FROM
		roll        int
		dmarc       string
		policy      string
		disposition string
		domain      string
		verdict     sdk.Verdict
	}{
		{"aligned by spf", message("a@example.test"), "b@example.test", 0, "pass", "reject", "none", "example.test", sdk.VerdictPass},
		{"aligned by spf, relaxed subdomain", message("a@example.test"), "b@bounce.example.test", 0, "pass", "reject", "none", "example.test", sdk.VerdictPass},
		{"aligned by dkim", sign(t, message("a@example.test"), "example.test", "rsa", rk, none), "b@other.test", 0, "pass", "reject", "none", "example.test", sdk.VerdictPass},
		{"unaligned: spf and dkim pass for another domain", sign(t, message("a@example.test"), "other.test", "ed", ek, none), "b@other.test", 0, "fail", "reject", "reject", "example.test", sdk.VerdictFail},
		{"unaligned: tampered aligned signature", sign(t, message("a@example.test"), "example.test", "rsa", rk, none) + "more\r\n", "b@other.test", 0, "fail", "reject", "reject", "example.test", sdk.VerdictFail},
		{"strict: subdomain signature and mail from do not align", sign(t, message("a@strict.test"), "mail.strict.test", "ed", ek, none), "b@mail.strict.test", 0, "fail", "reject", "reject", "strict.test", sdk.VerdictFail},
		{"strict: exact spf domain aligns", message("a@strict.test"), "b@strict.test", 0, "pass", "reject", "none", "strict.test", sdk.VerdictPass},
		{"org-domain fallback applies sp", message("a@mail.example.co.jp"), "b@other.test", 0, "fail", "reject", "reject", "example.co.jp", sdk.VerdictFail},
		{"quarantine is not a verdict fail", message("a@quar.test"), "b@other.test", 0, "fail", "quarantine", "quarantine", "quar.test", sdk.VerdictNeutral},
		{"pct: sampled in", message("a@pct.test"), "b@other.test", 19, "fail", "reject", "reject", "pct.test", sdk.VerdictFail},
		{"pct: sampled out becomes quarantine", message("a@pct.test"), "b@other.test", 20, "fail", "reject", "quarantine", "pct.test", sdk.VerdictNeutral},
		{"no record", message("a@other.test"), "b@other.test", 0, "none", "", "none", "", sdk.VerdictNone},
		{"two records: no dmarc", message("a@two.test"), "b@other.test", 0, "none", "", "none", "", sdk.VerdictNone},
		{"not a dmarc record", message("a@junk.test"), "b@other.test", 0, "none", "", "none", "", sdk.VerdictNone},
		// 6.6.3 steps 5 and 6 end discovery where the From domain has
		// v=DMARC1 records that do not make one policy; only none at all
		// sends it to the organizational domain.
		{"two records at a subdomain: no dmarc", message("a@two.example.test"), "b@other.test", 0, "none", "", "none", "", sdk.VerdictNone},
		{"bad p at a subdomain: no dmarc", message("a@badp.example.test"), "b@other.test", 0, "none", "", "none", "", sdk.VerdictNone},
		{"non-dmarc text at a subdomain: org policy", message("a@other.example.test"), "b@other.test", 0, "fail", "reject", "reject", "example.test", sdk.VerdictFail},
		{"temperror", message("a@temp.test"), "b@other.test", 0, "temperror", "", "none", "", sdk.VerdictNeutral},
		{"no From", "Subject: x\r\n\r\nbody\r\n", "b@other.test", 0, "permerror", "", "none", "", sdk.VerdictNeutral},
		// RFC 7489 6.6.1: each author domain is checked, and the
		// strictest failure applies: a second address (or From field)
		// does not take a p=reject domain out of DMARC.
		{"two From domains: the failing one rejects", "From: ceo@example.test, x@other.test\r\nSubject: x\r\n\r\nbody\r\n", "b@other.test", 0, "fail", "reject", "reject", "example.test", sdk.VerdictFail},
		{"two From fields: the failing one rejects", "From: x@other.test\r\nFrom: ceo@example.test\r\nSubject: x\r\n\r\nbody\r\n", "b@other.test", 0, "fail", "reject", "reject", "example.test", sdk.VerdictFail},
		{"two From domains: one passes, one quarantines", "From: x@example.test, ceo@quar.test\r\nSubject: x\r\n\r\nbody\r\n", "b@example.test", 0, "fail", "quarantine", "quarantine", "quar.test", sdk.VerdictNeutral},
		{"two From domains that both pass", "From: a@example.test, b@bounce.example.test\r\nSubject: x\r\n\r\nbody\r\n", "b@example.test", 0, "pass", "reject", "none", "example.test", sdk.VerdictPass},
		{"two From domains: temperror outranks quarantine", "From: ceo@quar.test, x@temp.test\r\nSubject: x\r\n\r\nbody\r\n", "b@other.test", 0, "temperror", "", "none", "", sdk.VerdictNeutral},
		{"more From domains than are looked up", "From: a@d1.test, a@d2.test, a@d3.test, a@d4.test, a@d5.test, a@d6.test, a@d7.test, a@d8.test, a@d9.test, a@d10.test, a@example.test\r\nSubject: x\r\n\r\nbody\r\n", "b@other.test", 0, "permerror", "", "none", "", sdk.VerdictNeutral},
		// A DNS failure checking an aligned identifier is not a failure:
		// never a reject for what a retry may pass.
		{"aligned dkim key lookup servfail is temperror", sign(t, message("a@example.test"), "example.test", "down", rk, none), "b@other.test", 0, "temperror", "reject", "none", "example.test", sdk.VerdictNeutral},
		{"aligned spf servfail is temperror", message("a@example.test"), "b@spfdown.example.test", 0, "temperror", "reject", "none", "example.test", sdk.VerdictNeutral},
		{"unaligned dkim servfail is still fail", sign(t, message("a@example.test"), "other.test", "down", ek, none), "b@other.test", 0, "fail", "reject", "reject", "example.test", sdk.VerdictFail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStage(t, srv, tc.roll)
			res := check(t, s, dataReq(t, tc.raw, "h.other.test", tc.from))
			a := res.Attrs
			if a["dmarc"] != tc.dmarc || a["dmarc_policy"] != tc.policy || a["dmarc_disposition"] != tc.disposition || a["dmarc_domain"] != tc.domain {
				t.Errorf("dmarc=%q policy=%q disposition=%q domain=%q, want %q %q %q %q (%s)",
					a["dmarc"], a["dmarc_policy"], a["dmarc_disposition"], a["dmarc_domain"],
					tc.dmarc, tc.policy, tc.disposition, tc.domain, res.Reason)
			}
			if res.Verdict != tc.verdict {
				t.Errorf("verdict = %q, want %q", res.Verdict, tc.verdict)
			}
		})
	}
}

func TestParseRecord(t *testing.T) {
	tests := []struct {
		name, txt string
		want      *record // nil: no record
	}{
		{"minimal", "v=DMARC1; p=reject", &record{p: "reject", pct: 100, adkim: 'r', aspf: 'r'}},
		{"all tags", "v=DMARC1;p=quarantine;sp=none;pct=5;adkim=s;aspf=s", &record{p: "quarantine", sp: "none", pct: 5, adkim: 's', aspf: 's'}},
		{"spaces and case", " v = DMARC1 ; P = Reject ; ADKIM = S ", &record{p: "reject", pct: 100, adkim: 's', aspf: 'r'}},
		{"bad pct keeps default", "v=DMARC1; p=none; pct=200", &record{p: "none", pct: 100, adkim: 'r', aspf: 'r'}},
		{"bad p with rua is p=none", "v=DMARC1; p=bogus; rua=mailto:a@b.test", &record{p: "none", pct: 100, adkim: 'r', aspf: 'r'}},
		{"bad p without rua", "v=DMARC1; p=bogus", nil},
		// Tag order does not matter (RFC 7489 6.3): a bad sp is a bad
		// policy wherever it stands.
		{"bad sp after p", "v=DMARC1; p=reject; sp=bogus", nil},
		{"bad sp before p", "v=DMARC1; sp=bogus; p=reject", nil},
		{"bad sp after p with rua is p=none", "v=DMARC1; p=reject; sp=bogus; rua=mailto:a@b.test", &record{p: "none", pct: 100, adkim: 'r', aspf: 'r'}},
		{"bad sp before p with rua is p=none", "v=DMARC1; sp=bogus; p=reject; rua=mailto:a@b.test", &record{p: "none", pct: 100, adkim: 'r', aspf: 'r'}},
		{"no p", "v=DMARC1; pct=50", nil},
		{"v not first", "p=reject; v=DMARC1", nil},
		{"other version", "v=DMARC2; p=reject", nil},
		{"empty", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRecord(tc.txt)
			if tc.want == nil {
				if err == nil {
					t.Errorf("got %+v, want no record", got)
				}
				return
			}
			if err != nil || *got != *tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestOrgDomain(t *testing.T) {
	for in, want := range map[string]string{
		"mail.example.co.jp": "example.co.jp", "example.co.jp": "example.co.jp", "a.b.example.test": "example.test",
		"co.jp": "co.jp", "Example.COM.": "example.com",
	} {
		if got := orgDomain(in); got != want {
			t.Errorf("orgDomain(%q) = %q, want %q", in, got, want)
		}
	}
}

// Checks run concurrently with a reload (go test -race).
func TestConcurrentChecks(t *testing.T) {
	srv := dmarcZone(t)
	rk, _ := keys(t)
	s := newStage(t, srv, 0)
	raw := sign(t, message("a@example.test"), "example.test", "rsa", rk, time.Time{})
	errs := make(chan string, 16)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 5 {
				res, err := s.Check(context.Background(), dataReq(t, raw, "h.other.test", "b@other.test"))
				if err != nil || res.Verdict != sdk.VerdictPass {
					errs <- fmt.Sprintf("worker %d: %v %+v", i, err, res)
					return
				}
			}
		})
	}
	env := sdk.Env{Hostname: authservID, DNSServers: []string{srv.Addr}}
	if err := s.Configure(context.Background(), env, map[string]any{"authserv_id": "gw.portcullis.test"}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// The sender chooses the names in MAIL FROM, From and the signature's d=
// and s=. One that DNS cannot hold (a label over 63 octets) does not
// exist; it must not read as a DNS failure, which would turn the DMARC
// fail of a p=reject domain into a temperror.
func TestMalformedNamesAreNotDNSFailures(t *testing.T) {
	srv := dmarcZone(t)
	rk, _ := keys(t)
	s := newStage(t, srv, 0)
	long := strings.Repeat("a", 64)
	tests := []struct {
		name, raw, mailFrom string
		spf, dkim           string
	}{
		{"From in a subdomain with a long label", message("a@" + long + ".example.test"), "b@other.test", "pass", "none"},
		{"MAIL FROM in a subdomain with a long label", message("a@example.test"), "b@" + long + ".example.test", "none", "none"},
		{"signature with a long selector", sign(t, message("a@example.test"), "example.test", long, rk, time.Time{}), "b@other.test", "pass", "permerror"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := check(t, s, dataReq(t, tc.raw, "h.other.test", tc.mailFrom))
			a := res.Attrs
			if a["spf"] != tc.spf || a["dkim"] != tc.dkim {
				t.Errorf("spf=%q dkim=%q, want %q %q (%s)", a["spf"], a["dkim"], tc.spf, tc.dkim, res.Reason)
			}
			if a["dmarc"] != "fail" || a["dmarc_domain"] != "example.test" || res.Verdict != sdk.VerdictFail {
				t.Errorf("dmarc=%q domain=%q verdict=%q, want fail at example.test (%s)", a["dmarc"], a["dmarc_domain"], res.Verdict, res.Reason)
			}
		})
	}
}
