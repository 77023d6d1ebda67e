package msgauth

import (
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// 例え.test is xn--r8jz45g.test: its records are published, and its
// signatures made, at the A-labels (RFC 8616 4-6). An SMTPUTF8 message
// naming it in U-labels gets the same SPF, DKIM alignment and DMARC
// policy as one naming it in A-labels.
func TestIDNDomains(t *testing.T) {
	rk, _ := keys(t)
	srv := dnsutiltest.New(t,
		`xn--r8jz45g.test. 300 IN TXT "v=spf1 ip4:192.0.2.10 -all"`,
		`_dmarc.xn--r8jz45g.test. 300 IN TXT "v=DMARC1; p=reject"`,
		keyRecord(t, "xn--r8jz45g.test", "rsa", rk),
	)
	signed := sign(t, message("ceo@例え.test"), "xn--r8jz45g.test", "rsa", rk, time.Time{})
	tests := []struct {
		name, raw, mailFrom string
		spf, dmarc, from    string
		spfDomain           string
		verdict             sdk.Verdict
	}{
		{"U-label From, unsigned, other sender: the A-label policy rejects", message("ceo@例え.test"), "x@other.test",
			"none", "fail", "xn--r8jz45g.test", "other.test", sdk.VerdictFail},
		{"A-label From, unsigned, other sender", message("ceo@xn--r8jz45g.test"), "x@other.test",
			"none", "fail", "xn--r8jz45g.test", "other.test", sdk.VerdictFail},
		{"U-label From signed at the A-label aligns", signed, "x@other.test",
			"none", "pass", "xn--r8jz45g.test", "other.test", sdk.VerdictPass},
		{"U-label MAIL FROM passes SPF at the A-label and aligns", message("ceo@例え.test"), "a@例え.test",
			"pass", "pass", "xn--r8jz45g.test", "xn--r8jz45g.test", sdk.VerdictPass},
		{"U-label MAIL FROM, A-label From", message("ceo@xn--r8jz45g.test"), "a@例え.TEST",
			"pass", "pass", "xn--r8jz45g.test", "xn--r8jz45g.test", sdk.VerdictPass},
		{"U-label and A-label From addresses are one domain", "From: ceo@例え.test, cfo@xn--r8jz45g.test\r\nSubject: two\r\n\r\nbody\r\n", "x@other.test",
			"none", "fail", "xn--r8jz45g.test", "other.test", sdk.VerdictFail},
		{"a From domain that is not IDNA is permerror", message("ceo@a\u200db.test"), "x@other.test",
			"none", "permerror", "", "other.test", sdk.VerdictNeutral},
		{"a MAIL FROM domain that is not IDNA is permerror", message("ceo@other.test"), "x@a\u200db.test",
			"permerror", "none", "other.test", "a\u200db.test", sdk.VerdictNone},
	}
	s := newStage(t, srv, 0)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := check(t, s, dataReq(t, tc.raw, "h.other.test", tc.mailFrom))
			a := res.Attrs
			if a["spf"] != tc.spf || a["spf_domain"] != tc.spfDomain || a["dmarc"] != tc.dmarc || a["dmarc_from"] != tc.from || res.Verdict != tc.verdict {
				t.Errorf("spf=%s (%s) dmarc=%s from=%q verdict=%s, want %s (%s) %s %q %s (%s)",
					a["spf"], a["spf_domain"], a["dmarc"], a["dmarc_from"], res.Verdict,
					tc.spf, tc.spfDomain, tc.dmarc, tc.from, tc.verdict, res.Reason)
			}
		})
	}
}
