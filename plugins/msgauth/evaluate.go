package msgauth

import (
	"strconv"
	"strings"
)

// The DMARC results of RFC 7489 / RFC 8601 2.7.5.
const (
	dmarcPass      = "pass"
	dmarcFail      = "fail"
	dmarcNone      = "none"
	dmarcTempError = "temperror"
	dmarcPermError = "permerror"
)

// sigResult is one DKIM signature's outcome.
type sigResult struct {
	result string // pass | fail | neutral | policy | temperror | permerror (RFC 8601 2.7.1)
	domain string // d=
	ident  string // i=
	reason string
}

// verdictInput is what DMARC is evaluated from.
type verdictInput struct {
	spf       string // the MAIL FROM (or HELO, for <>) SPF result
	spfDomain string // the domain SPF checked
	dkim      []sigResult
	from      string // RFC5322.From domain
	found     found
	roll      int // 0-99, for pct sampling
}

// outcome is the DMARC evaluation.
type outcome struct {
	result      string
	policy      string // the requested policy that applies (p, or sp for a subdomain)
	disposition string // what the policy asks after pct sampling: none | quarantine | reject
	pct         int
	domain      string // where the record was found
	spfAligned  bool
	dkimAligned bool
	reason      string
}

// evaluate applies RFC 7489 6.6: DMARC passes when SPF or DKIM passes for
// an identifier aligned with the From domain (3.1); on failure the policy
// applies to pct percent of messages, and the rest get the next weaker
// one (6.6.4: reject becomes quarantine, quarantine becomes none).
func evaluate(in verdictInput) outcome {
	f := in.found
	switch {
	case f.err != nil:
		return outcome{result: dmarcTempError, disposition: "none", reason: "DNS failure looking up the policy"}
	case f.rec == nil:
		return outcome{result: dmarcNone, disposition: "none"}
	}
	o := outcome{policy: f.rec.p, pct: f.rec.pct, domain: f.domain}
	// 6.6.3: sp applies when the record was found at the organizational
	// domain for a From domain below it.
	if f.domain != in.from && f.rec.sp != "" {
		o.policy = f.rec.sp
	}
	o.spfAligned = in.spf == "pass" && aligned(in.spfDomain, in.from, f.rec.aspf)
	for _, s := range in.dkim {
		if s.result == "pass" && aligned(s.domain, in.from, f.rec.adkim) {
			o.dkimAligned = true
		}
	}
	if o.spfAligned || o.dkimAligned {
		o.result, o.disposition = dmarcPass, "none"
		return o
	}
	// An aligned identifier whose check met a DNS failure might have
	// passed: that is not yet a failure, and never a reason to reject.
	// SPF temperror and DKIM TEMPFAIL ask the receiver to try again later
	// (RFC 7208 2.6.6, RFC 6376 6.1.2); the DMARC result is temperror (RFC
	// 8601 2.7.5). The policy stays visible, so rules can tempfail the
	// mail of a domain that asks for reject.
	if why := tempAligned(in, f.rec); why != "" {
		o.result, o.disposition, o.reason = dmarcTempError, "none", why
		return o
	}
	o.result, o.disposition = dmarcFail, o.policy
	if in.roll >= o.pct {
		o.disposition = weaker(o.policy)
		o.reason = "pct=" + strconv.Itoa(o.pct) + " sampled out"
	}
	return o
}

// tempAligned says which aligned identifier could not be checked for a
// DNS failure, or "" when none.
func tempAligned(in verdictInput, rec *record) string {
	if in.spf == "temperror" && aligned(in.spfDomain, in.from, rec.aspf) {
		return "spf temperror for " + in.spfDomain
	}
	for _, s := range in.dkim {
		if s.result == "temperror" && aligned(s.domain, in.from, rec.adkim) {
			return "dkim temperror for " + s.domain
		}
	}
	return ""
}

// strictness orders the outcomes of several author domains (RFC 7489
// 6.6.1: the strictest failing policy applies): a fail that rejects, then
// a temperror (it may be one that rejects: rules tempfail it), then the
// other fails by disposition, then none, then pass, which the message
// has only when every domain passes.
func strictness(o outcome) int {
	switch {
	case o.result == dmarcFail && o.disposition == "reject":
		return 6
	case o.result == dmarcTempError:
		return 5
	case o.result == dmarcFail && o.disposition == "quarantine":
		return 4
	case o.result == dmarcFail:
		return 3
	case o.result == dmarcPermError:
		return 2
	case o.result == dmarcNone:
		return 1
	}
	return 0
}

func weaker(p string) string {
	if p == "reject" {
		return "quarantine"
	}
	return "none"
}

// dkimSummary is the best result over all signatures: pass if any passed.
func dkimSummary(sigs []sigResult) string {
	if len(sigs) == 0 {
		return "none"
	}
	rank := map[string]int{"pass": 6, "fail": 5, "policy": 4, "neutral": 3, "permerror": 2, "temperror": 1}
	best := sigs[0].result
	for _, s := range sigs[1:] {
		if rank[s.result] > rank[best] {
			best = s.result
		}
	}
	return best
}

// localPart returns the local-part of an address.
func localPart(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i]
	}
	return ""
}

// domainOf returns the domain of an address, lower case.
func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		addr = addr[i+1:]
	}
	return strings.ToLower(strings.TrimSuffix(addr, "."))
}
