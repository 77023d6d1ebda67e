// Package dnsutil is a small DNS client for stages: it asks the gateway's
// resolvers (sdk.Env.DNSServers) one question at a time with miekg/dns and
// tells a DNS failure (timeout, SERVFAIL, REFUSED, a lame answer, a reply
// to another question) apart from an answer that the name or the record
// does not exist (NXDOMAIN, NODATA). A stage must never read a failure as
// "not listed".
//
// It also builds the reversed names of RFC 1035 3.5 (in-addr.arpa), RFC
// 3596 2.5 (ip6.arpa nibbles) and RFC 5782 2.1/2.4 (DNSBL queries).
package dnsutil

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DefaultTimeout bounds one attempt at one server when Resolver.Timeout is 0.
const DefaultTimeout = 2 * time.Second

// ErrNoServers is returned when there is no resolver to ask.
var ErrNoServers = errors.New("dnsutil: no DNS servers")

// ErrLameAnswer is the Err of an *Error when a server answered NOERROR
// without records, without authority and without recursion: it neither
// holds the name's zone nor resolves for us (typically a referral, from a
// server with recursion off). Go's resolver calls this errLameReferral and,
// as libresolv does, asks the next server.
var ErrLameAnswer = errors.New("lame answer: no records, not authoritative, no recursion (a server that does not resolve?)")

// ErrWrongQuestion is the Err of an *Error when a reply's question section
// is not the question asked: RFC 5452 9.1 requires it to match before the
// reply is taken as the answer (it may be a forged or a stray one).
var ErrWrongQuestion = errors.New("reply to another question")

// ErrCNAMELoop is the Err of an *Error when the name's CNAME chain in a
// reply comes round to itself: the name has no data, and a resolver that
// meets a loop answers SERVFAIL (RFC 1034 3.6.2 calls such chains
// illegal). Read as NODATA, it would tell a DNSBL stage "not listed".
var ErrCNAMELoop = errors.New("CNAME loop")

// Error is a failed lookup: no usable answer came back.
type Error struct {
	Name  string
	Type  string
	Rcode int   // the server's rcode, or -1 when no usable answer came (timeout, network, ErrLameAnswer, ErrWrongQuestion)
	Err   error // the network error, ErrLameAnswer or ErrWrongQuestion, if any
}

func (e *Error) Error() string {
	if e.Rcode >= 0 {
		return fmt.Sprintf("dns %s %s: %s", e.Type, e.Name, dns.RcodeToString[e.Rcode])
	}
	return fmt.Sprintf("dns %s %s: %v", e.Type, e.Name, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether no server answered in time.
func (e *Error) Timeout() bool {
	var ne net.Error
	return e.Rcode < 0 && (errors.As(e.Err, &ne) && ne.Timeout() || errors.Is(e.Err, context.DeadlineExceeded))
}

// Resolver asks Servers in order until one answers.
type Resolver struct {
	Servers []string      // host:port
	Timeout time.Duration // per server attempt (at most an even share of ctx's time left); DefaultTimeout if 0
}

// New returns a resolver for servers (host:port), or for the nameservers
// of /etc/resolv.conf when servers is empty.
func New(servers []string) (*Resolver, error) {
	if len(servers) == 0 {
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil {
			return nil, fmt.Errorf("dnsutil: %w", err)
		}
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cc.Port))
		}
	}
	if len(servers) == 0 {
		return nil, ErrNoServers
	}
	return &Resolver{Servers: servers}, nil
}

// Answer is what a server said about a name and type.
type Answer struct {
	Records  []dns.RR // answer section records of the asked type owned by the name or its CNAME chain (CNAMEs left out)
	NXDomain bool     // the name does not exist
	TTL      uint32   // smallest TTL of Records; for a negative answer the SOA minimum, else 0
}

// Lookup asks for name's records of type qtype (dns.TypeA, ...). NXDOMAIN
// and NODATA are answers with no Records, not errors; anything else that
// is not NOERROR, a lame answer (ErrLameAnswer), a reply to another
// question (ErrWrongQuestion), and no answer at all, is an *Error. A
// server that fails is followed by the next.
//
// A name that DNS cannot hold (a label over 63 octets, an empty label, over
// 255 octets in all) is answered NXDOMAIN without asking: such a query
// fails to pack or draws FORMERR, which would read as a DNS failure, and
// the names stages look up (HELO, MAIL FROM and From domains) are the
// sender's choice: a failure there would buy the sender a stage's on_error.
func (r *Resolver) Lookup(ctx context.Context, name string, qtype uint16) (*Answer, error) {
	if len(r.Servers) == 0 {
		return nil, ErrNoServers
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return &Answer{NXDomain: true}, nil
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(1232, false)
	q := m.Question[0]
	q.Name = wireName(q.Name)
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	fail := &Error{Name: name, Type: dns.TypeToString[qtype], Rcode: -1}
	for i, srv := range r.Servers {
		// Within a deadline, each server that is left gets its share of
		// what is left: the stages set Timeout to their whole budget, and
		// a first server that never answers would otherwise spend it all
		// and leave the second unasked.
		t := timeout
		if dl, ok := ctx.Deadline(); ok {
			t = min(t, time.Until(dl)/time.Duration(len(r.Servers)-i))
		}
		resp, err := exchange(ctx, m, srv, t)
		if err == nil && (resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError) {
			err = unusable(resp, q)
		}
		if err != nil {
			fail.Rcode, fail.Err = -1, err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			return answer(resp, q), nil
		}
		fail.Rcode, fail.Err = resp.Rcode, nil
	}
	return nil, fail
}

// exchange sends m over UDP, and again over TCP when the reply is truncated.
func exchange(ctx context.Context, m *dns.Msg, srv string, timeout time.Duration) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &dns.Client{Timeout: timeout}
	resp, _, err := c.ExchangeContext(ctx, m, srv)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, m, srv)
	}
	return resp, err
}

// wireName is name as miekg/dns writes a name it reads off the wire, the
// form of the names in a reply: a name the caller wrote with escapes
// (\097 for a) must still match the reply's copy of it.
func wireName(name string) string {
	buf := make([]byte, 256)
	off, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		return name
	}
	if s, _, err := dns.UnpackDomainName(buf[:off], 0); err == nil {
		return s
	}
	return name
}

// unusable returns why resp, a NOERROR or NXDOMAIN reply, is no answer to
// q: a reply to another question (RFC 5452 9.1: name, type and class must
// match; names compare without case, RFC 4343), or a lame one.
func unusable(resp *dns.Msg, q dns.Question) error {
	if len(resp.Question) != 1 {
		return fmt.Errorf("%w (%d questions)", ErrWrongQuestion, len(resp.Question))
	}
	if rq := resp.Question[0]; !strings.EqualFold(rq.Name, q.Name) || rq.Qtype != q.Qtype || rq.Qclass != q.Qclass {
		return fmt.Errorf("%w (%s %s %s)", ErrWrongQuestion, rq.Name, dns.ClassToString[rq.Qclass], dns.TypeToString[rq.Qtype])
	}
	if lame(resp) {
		return ErrLameAnswer
	}
	if _, loop := chain(q.Name, resp.Answer); loop {
		return ErrCNAMELoop
	}
	return nil
}

// lame reports whether resp is no answer but a server's way of saying it
// cannot give one: NOERROR with nothing in the answer section, and no SOA
// in the authority section to make it NODATA (RFC 2308 2.2), from a server
// that is not authoritative for the name and offers no recursion. Read as
// NODATA it would tell a DNSBL stage "not listed" (and cache that) and
// rdns "no PTR record", for as long as that resolver is misconfigured.
func lame(resp *dns.Msg) bool {
	if resp.Rcode != dns.RcodeSuccess || resp.Authoritative || resp.RecursionAvailable || len(resp.Answer) > 0 {
		return false
	}
	for _, rr := range resp.Ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			return false
		}
	}
	return true
}

// answer reads resp's records for q. Only records owned by the name asked
// or by a name in its CNAME chain answer it (RFC 1034 4.3.2 step 3a: a
// server that meets a CNAME goes on at its target): anything else in the
// answer section is another name's data, from a broken or forging server,
// and must not read as, say, a DNSBL listing or an address that confirms
// a PTR name.
func answer(resp *dns.Msg, q dns.Question) *Answer {
	a := &Answer{NXDomain: resp.Rcode == dns.RcodeNameError}
	owners, _ := chain(q.Name, resp.Answer)
	for _, rr := range resp.Answer {
		h := rr.Header()
		if h.Rrtype != q.Qtype || h.Class != q.Qclass || !owners[strings.ToLower(h.Name)] {
			continue
		}
		if len(a.Records) == 0 || h.Ttl < a.TTL {
			a.TTL = h.Ttl
		}
		a.Records = append(a.Records, rr)
	}
	if len(a.Records) == 0 {
		// RFC 2308 5: a negative answer lives for the SOA's minimum.
		for _, rr := range resp.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				a.TTL = min(soa.Minttl, soa.Hdr.Ttl)
			}
		}
	}
	return a
}

// chain returns name and the names its CNAME records in rrs lead to, in
// lower case, and whether the chain comes round to a name in it (a loop).
func chain(name string, rrs []dns.RR) (names map[string]bool, loop bool) {
	target := map[string]string{}
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok {
			if owner := strings.ToLower(c.Hdr.Name); target[owner] == "" {
				target[owner] = strings.ToLower(c.Target)
			}
		}
	}
	name = strings.ToLower(name)
	names = map[string]bool{}
	for name != "" && !names[name] {
		names[name] = true
		name = target[name]
	}
	return names, name != ""
}

// Addrs returns the addresses of A and AAAA records.
func (a *Answer) Addrs() []netip.Addr {
	var out []netip.Addr
	for _, rr := range a.Records {
		var ip net.IP
		switch v := rr.(type) {
		case *dns.A:
			ip = v.A
		case *dns.AAAA:
			ip = v.AAAA
		}
		if addr, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, addr.Unmap())
		}
	}
	return out
}

// Texts returns each TXT record's strings joined (RFC 7208 3.3 style), as
// the bytes the record holds. miekg/dns keeps TXT strings in zone-file
// presentation form (RFC 1035 5.1: '"' and '\\' escaped with a backslash,
// other bytes outside printable ASCII as \DDD in decimal); a DNSBL's
// reason "see \"FAQ\"" read as it is would reach a client's reply and the
// log with its backslashes, and a CR LF as the letters \013\010. The
// bytes are what a caller gets, any bytes a publisher put there: text for
// an SMTP reply or a log goes through the gateway's own sanitising.
func (a *Answer) Texts() []string {
	var out []string
	for _, rr := range a.Records {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, txtBytes(t))
		}
	}
	return out
}

// txtBytes is t's strings joined, unescaped by miekg/dns itself: packed
// for the wire (RFC 3597's generic form is that RDATA, in hex), where each
// string is a length octet and its bytes (RFC 1035 3.3.14).
func txtBytes(t *dns.TXT) string {
	var generic dns.RFC3597
	if err := generic.ToRFC3597(t); err != nil {
		// Not from the wire (a string over 255 octets): as it stands.
		return strings.Join(t.Txt, "")
	}
	rdata, err := hex.DecodeString(generic.Rdata)
	if err != nil {
		return strings.Join(t.Txt, "")
	}
	var b strings.Builder
	for len(rdata) > 0 {
		n := min(int(rdata[0]), len(rdata)-1)
		b.Write(rdata[1 : 1+n])
		rdata = rdata[1+n:]
	}
	return b.String()
}

// Names returns the targets of PTR records, without the final dot.
func (a *Answer) Names() []string {
	var out []string
	for _, rr := range a.Records {
		if p, ok := rr.(*dns.PTR); ok {
			out = append(out, strings.TrimSuffix(p.Ptr, "."))
		}
	}
	return out
}

// ValidHostname reports whether name (no final dot) is a host name: RFC
// 1123 2.1 labels of letters, digits and inner hyphens, at most 63 octets
// each and 253 in all, with '_' tolerated (names like that are published
// and Go's resolver accepts them), and a last label that is not all
// digits (RFC 3696 2: a top-level domain is not numeric). PTR data is the
// address owner's choice: a name that fails this (escaped bytes, spaces,
// an all-numeric name that reads as an address) must not become a
// client's confirmed name in rules and logs, however it resolves. Postfix
// (valid_hostname) and Go's resolver refuse such names too; the rdns stage
// and the gateway's conn.hostname use this.
func ValidHostname(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}
