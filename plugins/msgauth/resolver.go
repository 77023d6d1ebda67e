package msgauth

import (
	"context"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
)

// resolver speaks the dialect blitiri.com.ar/go/spf and go-msgauth's dkim
// understand: the *net.Resolver one. Both tell "no such record" from "DNS
// trouble" only by *net.DNSError's IsNotFound and Temporary(), and read any
// other error as a permanent one, so a SERVFAIL or timeout must come back
// as a temporary *net.DNSError, never as a plain error (RFC 7208 2.6.6
// temperror; RFC 6376 6.1.2 TEMPFAIL).
type resolver struct {
	ctx context.Context
	r   *dnsutil.Resolver
	// v4: the client is an IPv4 one, so SPF wants only A records.
	v4 bool
}

func (res resolver) lookup(ctx context.Context, name string, qtype uint16) (*dnsutil.Answer, error) {
	// A name no DNS can hold (a label over 63 octets, an empty label, over
	// 255 octets) does not exist: asking anyway fails to pack, or draws a
	// FORMERR, which would read as a temporary failure. The sender picks
	// these names (MAIL FROM, From, d= and s=), and a temperror for a
	// subdomain of a DMARC domain would dodge its p=reject. RFC 7208 4.3:
	// a malformed domain is "none"; RFC 6376 6.1.2: no key is PERMFAIL.
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, notFound(name)
	}
	a, err := res.r.Lookup(ctx, name, qtype)
	if err != nil {
		de := &net.DNSError{Err: err.Error(), Name: name, IsTemporary: true}
		if e, ok := err.(*dnsutil.Error); ok {
			de.IsTimeout = e.Timeout()
		}
		return nil, de
	}
	if len(a.Records) == 0 {
		return nil, notFound(name)
	}
	return a, nil
}

func notFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// LookupTXT returns each TXT record with its strings joined (RFC 7208 3.3).
func (res resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	a, err := res.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	return a.Texts(), nil
}

// LookupMX returns the exchangers of name.
func (res resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	a, err := res.lookup(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	var out []*net.MX
	for _, rr := range a.Records {
		if mx, ok := rr.(*dns.MX); ok {
			out = append(out, &net.MX{Host: mx.Mx, Pref: mx.Preference})
		}
	}
	return out, nil
}

// LookupIPAddr serves SPF's a, mx, ptr and exists. RFC 7208 5.3 and 5.4
// look up the type of the client's address, and 5.7 (exists) always A: for
// an IPv4 client that is A alone, so a failing AAAA lookup cannot turn its
// pass into a temperror, and a name with only AAAA records is a void
// lookup (4.6.4). For an IPv6 client the library asks the same question
// for a/mx (AAAA) and exists (A), so both are asked, and a failure of
// either is a failure, as a missing address could turn a pass into a fail.
func (res resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	types := []uint16{dns.TypeA, dns.TypeAAAA}
	if res.v4 {
		types = types[:1]
	}
	var out []net.IPAddr
	for _, t := range types {
		a, err := res.lookup(ctx, host, t)
		if err != nil {
			if de, ok := err.(*net.DNSError); ok && de.IsNotFound {
				continue
			}
			return nil, err
		}
		for _, ip := range a.Addrs() {
			out = append(out, net.IPAddr{IP: ip.AsSlice()})
		}
	}
	if len(out) == 0 {
		return nil, notFound(host)
	}
	return out, nil
}

// LookupAddr returns the PTR names of addr, with the final dot as
// net.Resolver returns them.
func (res resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr}
	}
	a, err := res.lookup(ctx, dnsutil.ReverseName(ip), dns.TypePTR)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range a.Names() {
		out = append(out, dns.Fqdn(n))
	}
	return out, nil
}

// txt is the context-free LookupTXT that dkim.VerifyOptions wants.
func (res resolver) txt(name string) ([]string, error) {
	return res.LookupTXT(res.ctx, strings.TrimSuffix(name, "."))
}
