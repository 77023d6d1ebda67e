package msgauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/mail"
	"strings"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/dkim"
	"golang.org/x/net/idna"

	"github.com/portcullis-mta/portcullis/sdk"
)

// spfResult is one SPF check (RFC 7208 2.6).
type spfResult struct {
	result string // none | neutral | pass | fail | softfail | temperror | permerror
	domain string // the domain checked
	reason string
}

// checkSPF runs check_host() for sender, or for postmaster@helo when the
// sender is <> (RFC 7208 2.4). The library returns an error on every
// result, pass included (it says which term decided), so only the Result
// is read, and the error text kept as the reason of the error results.
//
// An internationalised domain (an SMTPUTF8 MAIL FROM, RFC 6531) is asked
// in its A-label form, the form its records are published in (RFC 8616
// 4); one that does not convert is a permerror (RFC 7208 4.3: the domain
// is malformed).
func checkSPF(ctx context.Context, res resolver, ip net.IP, helo, sender string) spfResult {
	local, domain := "postmaster", strings.ToLower(helo)
	if sender != "" {
		local, domain = localPart(sender), domainOf(sender)
	}
	if local == "" {
		local = "postmaster" // RFC 7208 4.3
	}
	if ip == nil || !validDomain(domain) {
		return spfResult{result: "none", domain: domain}
	}
	domain, err := aLabel(domain)
	if err != nil {
		return spfResult{result: "permerror", domain: domain, reason: err.Error()}
	}
	if a, err := aLabel(strings.ToLower(helo)); err == nil {
		helo = a // for the %{h} macro (RFC 7208 7.3)
	}
	r, err := spf.CheckHostWithSender(ip, helo, local+"@"+domain, spf.WithResolver(res), spf.WithContext(ctx))
	out := spfResult{result: string(r), domain: domain}
	if err != nil && (r == spf.TempError || r == spf.PermError) {
		out.reason = err.Error()
	}
	return out
}

// validDomain: a dotted name, not an address literal (RFC 7208 4.3).
func validDomain(d string) bool {
	return strings.Contains(d, ".") && !strings.HasPrefix(d, "[") && net.ParseIP(d) == nil
}

// verifyDKIM checks every signature (up to max) over the whole message.
//
// go-msgauth puts each signature's verdict in its Verification; an error
// of its own is the message not being read (a spool or transport fault),
// which is the stage failing, never a DKIM result: a permerror there
// would become a DMARC fail, and a reject, for a local fault. It reads a
// header that ends at the end of the message (no empty line, no body, as
// RFC 5322 3.5 allows) as a read error, so an empty line is added after
// the message: body canonicalization ignores empty lines at its end (RFC
// 6376 3.4.3, 3.4.4), so no body hash changes.
func verifyDKIM(msg *sdk.Message, own ownHeader, res resolver, max int) ([]sigResult, error) {
	if !own.dkim {
		return nil, nil // no signature: none, whatever the header's size
	}
	if own.fields > maxDKIMFields {
		// go-msgauth keeps every field to find the signed ones: six
		// million empty fields cost it half a gigabyte. No real mail has
		// so many; its signatures are not verified.
		return []sigResult{{result: "permerror", reason: fmt.Sprintf("header of more than %d fields: not verified", maxDKIMFields)}}, nil
	}
	r, err := msg.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	body := io.MultiReader(r, strings.NewReader("\r\n\r\n"))
	vs, err := dkim.VerifyWithOptions(body, &dkim.VerifyOptions{LookupTXT: res.txt, MaxVerifications: max})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return nil, fmt.Errorf("msgauth: reading the message: %w", err)
	}
	out := make([]sigResult, 0, len(vs))
	for _, v := range vs {
		d, _ := aLabel(strings.ToLower(v.Domain)) // d= is A-labels (RFC 8616 5); one that is not cannot align
		out = append(out, sigResult{result: dkimResult(v.Err), domain: d, ident: v.Identifier, reason: errText(v.Err)})
	}
	return out, nil
}

// maxDKIMFields bounds the header fields of a message whose signatures are
// verified (as sdk/mime's MaxHeaderFields bounds those it keeps).
const maxDKIMFields = 1000

// dkimResult maps go-msgauth's error kinds to RFC 8601 2.7.1 results: a
// signature or body hash that does not verify is fail; a DNS failure
// fetching the key is temperror; anything unrecoverable (no key, expired,
// malformed) is permerror. go-msgauth refuses a signature with a body
// length (l=, which leaves the rest of the body unsigned: RFC 6376 8.2)
// before checking it, as a fail; it is signed but not acceptable to us,
// which is policy (2.7.1), and not a pass for DMARC either.
func dkimResult(err error) string {
	switch {
	case err == nil:
		return "pass"
	case strings.HasSuffix(err.Error(), errBodyLength):
		return "policy"
	case dkim.IsTempFail(err):
		return "temperror"
	case dkim.IsPermFail(err):
		return "permerror"
	default:
		return "fail"
	}
}

// errBodyLength ends go-msgauth's error for a signature with l=.
const errBodyLength = "message contains an insecure body length tag"

func errText(err error) string {
	if err == nil {
		return ""
	}
	return strings.TrimPrefix(err.Error(), "dkim: ")
}

// addrParser reads addresses whatever the charset of their display names
// (ISO-2022-JP is common here): the name is not needed, only the domain.
var addrParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
}}

// maxFromDomains bounds the author domains whose DMARC policies are looked
// up for one message: each costs up to two lookups, and the sender picks
// how many there are.
const maxFromDomains = 10

// fromDomains are the RFC5322.From domains, each once, in order. A message
// with no From is an error. One with several addresses, in one field or
// (against RFC 5322 3.6) in several, has several author domains: DMARC is
// checked for each and the strictest failure applies (RFC 7489 6.6.1), so
// that a second address cannot take a p=reject domain out of DMARC, as
// an error would. More than maxFromDomains domains is an error.
func fromDomains(h []sdk.HeaderField) ([]string, error) {
	var vals []string
	for _, f := range h {
		if strings.EqualFold(f.Name, "From") {
			vals = append(vals, f.Value)
		}
	}
	if len(vals) == 0 {
		return nil, errors.New("0 From fields")
	}
	// The policy of an internationalised domain is at its A-labels
	// (RFC 8616 6), and 例え.test and xn--r8jz45g.test are one domain.
	var domains []string
	seen := map[string]bool{}
	for _, v := range vals {
		list, err := addrParser.ParseList(v)
		if err != nil {
			return nil, fmt.Errorf("unparsable From: %v", err)
		}
		for _, a := range list {
			d, err := aLabel(domainOf(a.Address))
			if err != nil {
				return nil, fmt.Errorf("bad From domain %q: %v", domainOf(a.Address), err)
			}
			if !validDomain(d) {
				return nil, fmt.Errorf("bad From domain %q", d)
			}
			if !seen[d] {
				seen[d] = true
				domains = append(domains, d)
			}
		}
	}
	if len(domains) == 0 {
		return nil, errors.New("no From address")
	}
	if len(domains) > maxFromDomains {
		return nil, fmt.Errorf("%d From domains", len(domains))
	}
	return domains, nil
}

// aLabel is domain (lower case) with its U-labels converted to A-labels
// (RFC 5890 2.3.2.1), the form DNS names and DKIM d= take (RFC 8616 4,
// 5). An ASCII domain is returned as it is: IDNA's rules would refuse
// names SPF and DMARC have always looked up (an underscore, a label
// starting with a digit and a hyphen).
func aLabel(domain string) (string, error) {
	if isASCII(domain) {
		return domain, nil
	}
	a, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return domain, fmt.Errorf("not an internationalised domain name: %v", err)
	}
	return strings.ToLower(a), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
