package msgauth

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// record is a DMARC policy record (RFC 7489 6.3).
type record struct {
	p, sp       string // none | quarantine | reject; sp "" means as p
	pct         int    // 0-100, default 100
	adkim, aspf byte   // 'r' relaxed (default) or 's' strict
}

var errNotDMARC = errors.New("not a DMARC record")

// parseRecord parses a TXT record. It returns errNotDMARC when the record
// does not begin with v=DMARC1 (RFC 7489 6.6.3: such records are
// ignored). An invalid p= or sp= is read as p=none when the record names a
// report address (rua), and otherwise rejects the record (6.6.3 step 6).
// Unknown tags are ignored (6.3); bad values of optional tags take the
// default.
func parseRecord(txt string) (*record, error) {
	tags := strings.Split(txt, ";")
	if k, v, _ := strings.Cut(tags[0], "="); strings.TrimSpace(k) != "v" || strings.TrimSpace(v) != "DMARC1" {
		return nil, errNotDMARC
	}
	r := &record{pct: 100, adkim: 'r', aspf: 'r'}
	// Tags come in any order (6.3): a bad sp is remembered apart from p,
	// so that a p after it does not make the record good again.
	badSP, rua := false, false
	for _, t := range tags[1:] {
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "p":
			r.p = policy(v)
		case "sp":
			r.sp = policy(v)
			badSP = r.sp == ""
		case "pct":
			if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= 100 {
				r.pct = n
			}
		case "adkim":
			r.adkim = mode(v)
		case "aspf":
			r.aspf = mode(v)
		case "rua":
			rua = strings.Contains(v, ":")
		}
	}
	if r.p == "" || badSP {
		if !rua {
			return nil, errors.New("no valid p= tag")
		}
		r.p, r.sp = "none", ""
	}
	return r, nil
}

func policy(v string) string {
	switch v = strings.ToLower(v); v {
	case "none", "quarantine", "reject":
		return v
	}
	return ""
}

func mode(v string) byte {
	if strings.EqualFold(v, "s") {
		return 's'
	}
	return 'r'
}

// orgDomain is the organizational domain (RFC 7489 3.2): the public
// suffix plus one label. A name that is itself a public suffix is its own.
func orgDomain(domain string) string {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if org, err := publicsuffix.EffectiveTLDPlusOne(domain); err == nil {
		return org
	}
	return domain
}

// aligned reports identifier alignment (RFC 7489 3.1): in strict mode the
// domains are equal, in relaxed mode their organizational domains are.
func aligned(a, b string, m byte) bool {
	a, b = strings.ToLower(strings.TrimSuffix(a, ".")), strings.ToLower(strings.TrimSuffix(b, "."))
	if a == "" || b == "" {
		return false
	}
	if m == 's' {
		return a == b
	}
	return orgDomain(a) == orgDomain(b)
}

// found is the outcome of the policy discovery of RFC 7489 6.6.3.
type found struct {
	rec    *record
	domain string // where the record was found
	err    error  // a DNS failure: temperror
}

// discover looks up _dmarc.<from> and, when no v=DMARC1 record is there,
// _dmarc.<org> (RFC 7489 6.6.3 steps 1-3).
func discover(ctx context.Context, res resolver, from string) found {
	f, seen := lookupRecord(ctx, res, from)
	if seen || f.err != nil {
		return f
	}
	if org := orgDomain(from); org != from {
		f, _ = lookupRecord(ctx, res, org)
	}
	return f
}

// lookupRecord fetches the policy at _dmarc.domain; seen says whether any
// record there began with v=DMARC1. Several such records, or one without
// a usable p=, end discovery with no policy (6.6.3 steps 5 and 6): the
// domain spoke, so its organizational domain is not asked in its place.
func lookupRecord(ctx context.Context, res resolver, domain string) (f found, seen bool) {
	txts, err := res.LookupTXT(ctx, "_dmarc."+domain)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return found{}, false
		}
		return found{err: err}, false
	}
	var recs []*record
	n := 0
	for _, t := range txts {
		r, err := parseRecord(t)
		if errors.Is(err, errNotDMARC) {
			continue
		}
		n++
		if err == nil {
			recs = append(recs, r)
		}
	}
	if n != 1 || len(recs) != 1 {
		return found{}, n > 0
	}
	return found{rec: recs[0], domain: domain}, true
}
