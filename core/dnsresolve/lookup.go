package dnsresolve

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// maxCNAME bounds a CNAME chain; resolvers use about 8 (RFC 1034 3.6.2
// warns about loops, and long chains are a sign of one).
const maxCNAME = 8

// lookup returns the records of type qtype for name, following CNAMEs
// (RFC 1034 3.6.2) both inside one answer and by new queries. No records is
// (nil, nil); NXDOMAIN is a permanent NotFound *Error.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	qname := dns.Fqdn(strings.ToLower(name))
	for range maxCNAME {
		ans, err := r.query(ctx, qname, qtype)
		if err != nil {
			return nil, &Error{Name: name, Temporary: true, Err: err}
		}
		switch ans.rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			return nil, &Error{Name: name, NotFound: true, Err: errors.New("NXDOMAIN")}
		default:
			return nil, &Error{Name: name, Temporary: true, Err: errors.New(dns.RcodeToString[ans.rcode])}
		}
		rrs, target := follow(ans.rrs, qname, qtype)
		if len(rrs) > 0 || target == "" {
			return rrs, nil
		}
		qname = target // the answer stopped at a CNAME: ask for its target
	}
	return nil, &Error{Name: name, Temporary: true, Err: errors.New("CNAME chain too long")}
}

// follow walks the CNAME chain from qname within rrs and returns the records
// of qtype for its end, or the chain's unresolved target.
func follow(rrs []dns.RR, qname string, qtype uint16) ([]dns.RR, string) {
	cur := qname
	for range maxCNAME {
		var out []dns.RR
		next := ""
		for _, rr := range rrs {
			h := rr.Header()
			if !strings.EqualFold(h.Name, cur) {
				continue
			}
			if h.Rrtype == qtype {
				out = append(out, rr)
			} else if c, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME {
				next = strings.ToLower(c.Target)
			}
		}
		if len(out) > 0 {
			return out, ""
		}
		if next == "" {
			if cur == qname {
				return nil, ""
			}
			return nil, cur
		}
		cur = next
	}
	return nil, ""
}

// answer is what a query returned (or what the cache holds of it).
type answer struct {
	rcode int
	rrs   []dns.RR
	ttl   uint32
}

// query asks the servers in turn until one gives a usable answer: NOERROR
// or NXDOMAIN that answers our question, which is cached. A timeout, network
// error, a reply to another question, a lame referral or any other rcode
// (SERVFAIL, REFUSED, NOTIMP, FORMERR) moves on to the next server; if none
// answers the last problem is returned, which lookup makes temporary.
func (r *Resolver) query(ctx context.Context, qname string, qtype uint16) (*answer, error) {
	key := cacheKey{qname, qtype}
	if a, ok := r.cache.get(key); ok {
		return a, nil
	}
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.RecursionDesired = true
	m.SetEdns0(1232, false)
	var lastErr error
	var last *answer
	for _, srv := range r.servers {
		resp, err := r.exchange(ctx, m, srv)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		a := toAnswer(resp)
		if a.rcode != dns.RcodeSuccess && a.rcode != dns.RcodeNameError {
			// SERVFAIL, REFUSED, NOTIMP, FORMERR...: this server cannot
			// answer, another may (as libresolv moves on); not cached.
			last = a
			continue
		}
		r.cache.put(key, a)
		return a, nil
	}
	if last != nil {
		return last, nil
	}
	return nil, lastErr
}

func (r *Resolver) exchange(ctx context.Context, m *dns.Msg, srv string) (*dns.Msg, error) {
	resp, _, err := r.udp.ExchangeContext(ctx, m, srv)
	if err == nil && resp.Truncated {
		resp, _, err = r.tcp.ExchangeContext(ctx, m, srv)
	}
	if err == nil && resp.Id != m.Id {
		err = dns.ErrId
	}
	if err == nil && !sameQuestion(m.Question[0], resp) {
		err = fmt.Errorf("%s answered another question than %s %s", srv, m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype])
	}
	if err == nil && lame(resp) {
		err = fmt.Errorf("%s gave a referral, not an answer (lame: it does not recurse for us)", srv)
	}
	return resp, err
}

// lame reports whether resp is a referral rather than an answer: NOERROR,
// nothing in the answer section, no SOA (which a real "no such records"
// carries, RFC 2308 2.2), and neither authoritative nor from a server that
// recurses, or with NS records to follow (RFC 1034 4.3.1). A server with
// recursion off sends this to a recursive query (BIND: ". NS
// a.root-servers.net."); read as "no records", it would bounce the mail, so
// it counts as that server failing, as Go's resolver (errLameReferral) and
// libresolv do.
func lame(resp *dns.Msg) bool {
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) > 0 || resp.Authoritative {
		return false
	}
	referral := false
	for _, rr := range resp.Ns {
		switch rr.Header().Rrtype {
		case dns.TypeSOA:
			return false
		case dns.TypeNS:
			referral = true
		}
	}
	return referral || !resp.RecursionAvailable
}

// sameQuestion reports whether resp answers q: RFC 5452 9.1 accepts a reply
// only when its ID and its question (name, type, class) match the query. A
// reply that matches the ID alone is forged or a confused server's, and its
// NXDOMAIN must not bounce mail for the name we asked about.
func sameQuestion(q dns.Question, resp *dns.Msg) bool {
	if len(resp.Question) != 1 {
		return false
	}
	got := resp.Question[0]
	return strings.EqualFold(got.Name, q.Name) && got.Qtype == q.Qtype && got.Qclass == q.Qclass
}

// negativeTTL caps how long a negative answer is kept (RFC 2308 5 says use
// the SOA minimum; we also cap it so a fixed zone is seen soon).
const negativeTTL = 300

func toAnswer(resp *dns.Msg) *answer {
	a := &answer{rcode: resp.Rcode, rrs: resp.Answer}
	ttl := uint32(0)
	for i, rr := range resp.Answer {
		if t := rr.Header().Ttl; i == 0 || t < ttl {
			ttl = t
		}
	}
	if len(resp.Answer) == 0 {
		ttl = 60
		for _, rr := range resp.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				ttl = min(soa.Minttl, soa.Hdr.Ttl)
			}
		}
		ttl = min(ttl, negativeTTL)
	}
	a.ttl = ttl
	return a
}
