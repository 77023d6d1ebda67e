package msgauth

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// TestDMARCPolicyChoice: which policy applies, which alignment mode each
// identifier is held to, and which of several author domains decides.
func TestDMARCPolicyChoice(t *testing.T) {
	srv := dnsutiltest.New(t,
		// sp is for subdomains only (RFC 7489 6.3): the domain's own mail
		// gets p.
		`_dmarc.sp.test. 300 IN TXT "v=DMARC1; p=none; sp=reject"`,
		// aspf=s with adkim=r: SPF from a subdomain does not align.
		`_dmarc.mixed.test. 300 IN TXT "v=DMARC1; p=reject; aspf=s"`,
		`bounce.mixed.test. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`_dmarc.reject.test. 300 IN TXT "v=DMARC1; p=reject"`,
		`_dmarc.quar.test. 300 IN TXT "v=DMARC1; p=quarantine"`,
		`_dmarc.nonep.test. 300 IN TXT "v=DMARC1; p=none"`,
		`_dmarc.org.test. 300 IN TXT "v=DMARC1; p=reject"`,
	)
	srv.ServFail("_dmarc.temp.test")
	srv.ServFail("_dmarc.sub.org.test")
	many := strings.Repeat("a@reject.test, ", 11) + "b@reject.test"
	tests := []struct {
		name, from, mailFrom string
		dmarc, policy, disp  string
	}{
		{"sp not for the domain itself", "a@sp.test", "b@other.test", "fail", "none", "none"},
		{"sp for a subdomain", "a@mail.sp.test", "b@other.test", "fail", "reject", "reject"},
		{"aspf=s: spf of a subdomain does not align", "a@mixed.test", "b@bounce.mixed.test", "fail", "reject", "reject"},
		{"reject outranks temperror", "a@reject.test, b@temp.test", "b@other.test", "fail", "reject", "reject"},
		{"quarantine outranks a p=none fail", "a@nonep.test, b@quar.test", "b@other.test", "fail", "quarantine", "quarantine"},
		// One domain given in many addresses is one author domain, not
		// more than maxFromDomains.
		{"one domain many times", many, "b@other.test", "fail", "reject", "reject"},
		// A DNS failure at the From domain's own _dmarc is a temperror:
		// the organizational domain does not answer in its place.
		{"servfail at the domain is temperror", "a@sub.org.test", "b@other.test", "temperror", "", "none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := "From: " + tc.from + "\r\nSubject: x\r\n\r\nbody\r\n"
			res := check(t, newStage(t, srv, 0), dataReq(t, raw, "h.other.test", tc.mailFrom))
			a := res.Attrs
			if a["dmarc"] != tc.dmarc || a["dmarc_policy"] != tc.policy || a["dmarc_disposition"] != tc.disp {
				t.Errorf("dmarc=%q policy=%q disposition=%q, want %q %q %q (%s)",
					a["dmarc"], a["dmarc_policy"], a["dmarc_disposition"], tc.dmarc, tc.policy, tc.disp, res.Reason)
			}
		})
	}
}

func TestParseRecordEdges(t *testing.T) {
	if r, err := parseRecord("v=DMARC1; p=reject; pct=101"); err != nil || r.pct != 100 {
		t.Errorf("pct=101: %+v, %v; want the default 100", r, err)
	}
	// rua without a URI is no report address: a bad p stays fatal.
	if r, err := parseRecord("v=DMARC1; p=bogus; rua=nobody"); err == nil {
		t.Errorf("bad p with a rua that is no URI: %+v, want no record", r)
	}
}

// TestDKIMSummary: the summary is the most telling result over the
// signatures: pass over fail over policy over neutral over permerror over
// temperror.
func TestDKIMSummary(t *testing.T) {
	order := []string{"pass", "fail", "policy", "neutral", "permerror", "temperror"}
	for i, better := range order {
		for _, worse := range order[i+1:] {
			for _, sigs := range [][]sigResult{{{result: better}, {result: worse}}, {{result: worse}, {result: better}}} {
				if got := dkimSummary(sigs); got != better {
					t.Errorf("dkimSummary(%s, %s) = %s, want %s", sigs[0].result, sigs[1].result, got, better)
				}
			}
		}
	}
	if got := dkimSummary(nil); got != "none" {
		t.Errorf("no signature: %s, want none", got)
	}
}

// TestFieldValueSafety: a value the sender chose never breaks the
// Authentication-Results field: white space leaves a pvalue out, and a
// ';' in a reason cannot start a result.
func TestFieldValueSafety(t *testing.T) {
	for _, v := range []string{"a b", "a\tb", "a;b", `a"b`, "a(b"} {
		if got := pvalue(v); got != "" {
			t.Errorf("pvalue(%q) = %q, want \"\"", v, got)
		}
	}
	if got := reasonText(`x; dmarc=pass "\`); got != `x, dmarc=pass ''` {
		t.Errorf("reasonText = %q", got)
	}
	res := check(t, newStage(t, dnsutiltest.New(t), 0), dataReq(t, "From: a@example.test\r\n\r\nbody\r\n", "evil host", ""))
	for _, e := range res.Headers {
		if e.Op == sdk.HeaderAdd && strings.Contains(e.Value, "evil") {
			t.Errorf("HELO with a space in the field: %q", e.Value)
		}
	}
}

// TestSPFEmptyLocalPart: a sender without a local part is checked as
// postmaster (RFC 7208 4.3), which the %{l} macro shows.
func TestSPFEmptyLocalPart(t *testing.T) {
	srv := dnsutiltest.New(t,
		`lp.test. 300 IN TXT "v=spf1 exists:%{l}.allow.test -all"`,
		`postmaster.allow.test. 300 IN A 127.0.0.2`,
	)
	st := newStage(t, srv, 0).cur.Load()
	res := resolver{ctx: context.Background(), r: st.dns, v4: true}
	if r := checkSPF(context.Background(), res, net.ParseIP(clientIP), "h.other.test", "@lp.test"); r.result != "pass" {
		t.Errorf("spf %+v, want pass for postmaster", r)
	}
}
