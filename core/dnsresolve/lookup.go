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
		if len(ans.rrs) > 0 || ans.target == "" {
			return ans.rrs, nil
		}
		qname = ans.target // the answer stopped at a CNAME: ask for its target
	}
	return nil, &Error{Name: name, Temporary: true, Err: errors.New("CNAME chain too long")}
}

// answer is what a query returned (or what the cache holds of it), reduced
// to what answers the question.
type answer struct {
	rcode  int
	rrs    []dns.RR // the records of the asked type at the end of the CNAME chain
	target string   // or the chain's last target, which the reply did not resolve
	ttl    uint32
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
		a, err := toAnswer(resp, qname, qtype)
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", srv, err)
			continue
		}
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

// maxTTL caps how long any answer is kept: one day, as Unbound's
// cache-max-ttl, so a zone's mistake (or a forged answer) with a TTL of
// weeks does not outlive a day.
const maxTTL = 86400

// ttlOf is the TTL a record is kept for. RFC 2181 8: a TTL with the top
// bit set is to be treated as zero, not as 68 years.
func ttlOf(ttl uint32) uint32 {
	if ttl&(1<<31) != 0 {
		return 0
	}
	return min(ttl, maxTTL)
}

// errCNAMELoop is a CNAME chain that comes back to a name it passed, or
// goes on past maxCNAME, inside one reply. It is a DNS failure, not "no
// records" (resolvers SERVFAIL it; RFC 1034 3.6.2 warns of loops): the mail
// waits for the zone to be fixed instead of bouncing.
var errCNAMELoop = errors.New("CNAME loop")

// toAnswer reads the reply to (qname, qtype): it walks the CNAME chain from
// qname and keeps the records of qtype at its end. Records of other owners
// that are not on the chain are ignored (RFC 5452 9.1), and the TTL is the
// least of the records used (ttlOf). A reply with records but none for
// qname does not answer the question; a looping chain is errCNAMELoop.
// Either error counts as that server failing.
func toAnswer(resp *dns.Msg, qname string, qtype uint16) (*answer, error) {
	a := &answer{rcode: resp.Rcode}
	ttl := ^uint32(0)
	seen := map[string]bool{}
	cur := qname
	for {
		next := ""
		for _, rr := range resp.Answer {
			h := rr.Header()
			if !strings.EqualFold(h.Name, cur) {
				continue
			}
			if h.Rrtype == qtype {
				a.rrs = append(a.rrs, rr)
				ttl = min(ttl, ttlOf(h.Ttl))
			} else if c, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME {
				next = strings.ToLower(dns.Fqdn(c.Target))
				ttl = min(ttl, ttlOf(h.Ttl))
			}
		}
		if len(a.rrs) > 0 || next == "" {
			break
		}
		seen[cur] = true
		if seen[next] || len(seen) > maxCNAME {
			return nil, fmt.Errorf("%w at %s", errCNAMELoop, next)
		}
		cur = next
	}
	if len(a.rrs) == 0 && cur == qname && len(resp.Answer) > 0 {
		return nil, fmt.Errorf("reply holds no records for %s %s", qname, dns.TypeToString[qtype])
	}
	if len(a.rrs) == 0 && cur != qname {
		a.target = cur
	}
	if len(a.rrs) == 0 && (a.target == "" || a.rcode == dns.RcodeNameError) {
		ttl = min(ttl, negTTL(resp))
	}
	a.ttl = ttl
	return a, nil
}

// negTTL is how long the "no such name" or "no such records" of resp holds:
// its SOA's minimum (RFC 2308 5), 60 s without one, at most negativeTTL.
func negTTL(resp *dns.Msg) uint32 {
	ttl := uint32(60)
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttl = min(ttlOf(soa.Minttl), ttlOf(soa.Hdr.Ttl))
		}
	}
	return min(ttl, negativeTTL)
}
