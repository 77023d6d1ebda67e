// Package dnsresolve is the resolver delivery uses: MX (RFC 5321 5.1,
// RFC 7505 null MX) and A/AAAA lookups with miekg/dns against the configured
// servers or resolv.conf, CNAMEs followed, answers cached for their TTL in a
// bounded cache. Errors say whether they are temporary (timeout, SERVFAIL:
// try again later) or permanent (NXDOMAIN, null MX: bounce).
package dnsresolve

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// MX is one mail exchanger of a domain.
type MX struct {
	Host string // without the trailing dot
	Pref uint16
}

// Error is a failed lookup.
type Error struct {
	Name      string
	Temporary bool // timeout, SERVFAIL, unreachable servers: try again later
	NotFound  bool // NXDOMAIN or no address: the name does not exist for mail
	NullMX    bool // RFC 7505: the domain accepts no mail
	Err       error
}

func (e *Error) Error() string {
	switch {
	case e.NullMX:
		return e.Name + ": domain publishes a null MX (accepts no mail)"
	case e.NotFound:
		return e.Name + ": no such domain or no address"
	}
	return fmt.Sprintf("%s: DNS lookup failed: %v", e.Name, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// IsTemporary reports whether err is a lookup failure worth retrying. Errors
// that are not *Error (a cancelled context, say) count as temporary.
func IsTemporary(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Temporary
	}
	return err != nil
}

// Options configure a Resolver.
type Options struct {
	Servers   []string      // host:port; empty: the nameservers of ResolvConf
	Timeout   time.Duration // per query and server; 0: 5s
	CacheSize int           // answers kept; 0: 10000
	Now       func() time.Time
	// ResolvConf is read when Servers is empty; "" means /etc/resolv.conf.
	ResolvConf string
}

// Resolver looks up MX and address records.
type Resolver struct {
	servers []string
	udp     *dns.Client
	tcp     *dns.Client
	cache   *cache
}

// New returns a resolver for o.
func New(o Options) (*Resolver, error) {
	servers := o.Servers
	if len(servers) == 0 {
		path := o.ResolvConf
		if path == "" {
			path = "/etc/resolv.conf"
		}
		cc, err := dns.ClientConfigFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("dnsresolve: %w", err)
		}
		for _, s := range cc.Servers {
			servers = append(servers, joinHostPort(s, cc.Port))
		}
	}
	if len(servers) == 0 {
		return nil, errors.New("dnsresolve: no DNS servers configured")
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Resolver{
		servers: servers,
		udp:     &dns.Client{Net: "udp", Timeout: o.Timeout, UDPSize: 1232},
		tcp:     &dns.Client{Net: "tcp", Timeout: o.Timeout},
		cache:   newCache(o.CacheSize, o.Now),
	}, nil
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// LookupMX returns the mail exchangers of domain sorted by preference, equal
// preferences in random order (RFC 5321 5.1). A domain with no MX records
// returns (nil, nil): the caller falls back to the domain's own address. A
// null MX (RFC 7505), or a set of MX records that are all ".", is a
// permanent *Error with NullMX set.
func (r *Resolver) LookupMX(ctx context.Context, domain string) ([]MX, error) {
	rrs, err := r.lookup(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	var mxs []MX
	for _, rr := range rrs {
		if mx, ok := rr.(*dns.MX); ok {
			mxs = append(mxs, MX{Host: strings.TrimSuffix(mx.Mx, "."), Pref: mx.Preference})
		}
	}
	// RFC 7505 3: a "." MX (the null MX) says the domain accepts no mail; a
	// "." among real hosts is unusable and dropped. A set made only of "."
	// records is a null MX too, not a domain without MX: RFC 5321 5.1 falls
	// back to the domain's address only when there are no MX records, and
	// MX records none of which can be used are an error.
	out := mxs[:0]
	for _, mx := range mxs {
		if mx.Host != "" {
			out = append(out, mx)
		}
	}
	if len(out) == 0 && len(mxs) > 0 {
		return nil, &Error{Name: domain, NullMX: true}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pref < out[j].Pref })
	return out, nil
}

// LookupIP returns the IPv4 then IPv6 addresses of host. An IP literal is
// returned as is. A host with neither is a permanent NotFound *Error.
func (r *Resolver) LookupIP(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.Addr{a}, nil
	}
	type result struct {
		rrs []dns.RR
		err error
	}
	aaaa := make(chan result, 1)
	go func() {
		rrs, err := r.lookup(ctx, host, dns.TypeAAAA)
		aaaa <- result{rrs, err}
	}()
	rrs4, err4 := r.lookup(ctx, host, dns.TypeA)
	res6 := <-aaaa
	var addrs []netip.Addr
	for _, rr := range append(rrs4, res6.rrs...) {
		switch v := rr.(type) {
		case *dns.A:
			if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
				addrs = append(addrs, a)
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(v.AAAA); ok {
				addrs = append(addrs, a)
			}
		}
	}
	if len(addrs) > 0 {
		return addrs, nil
	}
	// Nothing found: a temporary failure of either family wins, so that a
	// flaky server never turns into a bounce.
	for _, err := range []error{err4, res6.err} {
		if IsTemporary(err) {
			return nil, err
		}
	}
	return nil, &Error{Name: host, NotFound: true}
}
