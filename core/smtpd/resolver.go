package smtpd

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
)

// serverPause is how long a server that did not answer is asked after the
// others. Every session looks its client up before the greeting: a dead
// first server in dns.servers would otherwise cost each greeting that
// server's share of dns.timeout, for the PTR query and again for the
// forward ones.
const serverPause = 30 * time.Second

// dnsResolver asks dns.servers for the client's host name with the stages'
// DNS client, one server after another. Go's resolver, given the servers
// through its Dial, picked one per connection, round-robin, and let each
// try run its resolv.conf timeout (5 s): a dead server among them took the
// whole lookup's time, and the name that the next server would have given
// was never asked for. Here each server left gets an even share of the
// time left, as the rdns stage's lookups do.
type dnsResolver struct {
	servers []string       // host:port, in dns.servers order
	timeout time.Duration  // at most, per server and query
	paused  []atomic.Int64 // per server: when it last failed to answer (Unix ns); 0: never
}

var _ Resolver = (*dnsResolver)(nil)

func newDNSResolver(servers []string, timeout time.Duration) *dnsResolver {
	return &dnsResolver{servers: servers, timeout: timeout, paused: make([]atomic.Int64, len(servers))}
}

// order is the servers' indexes in the order to ask them: dns.servers
// order, those that did not answer in the last serverPause last.
func (r *dnsResolver) order() []int {
	now := time.Now().UnixNano()
	var ok, late []int
	for i := range r.servers {
		if t := r.paused[i].Load(); t != 0 && now-t < int64(serverPause) {
			late = append(late, i)
		} else {
			ok = append(ok, i)
		}
	}
	return append(ok, late...)
}

// lookup asks for name's records of type qtype until a server answers.
func (r *dnsResolver) lookup(ctx context.Context, name string, qtype uint16) (*dnsutil.Answer, error) {
	order := r.order()
	var err error
	for n, i := range order {
		t := r.timeout
		if dl, ok := ctx.Deadline(); ok {
			t = min(t, time.Until(dl)/time.Duration(len(order)-n))
		}
		one := &dnsutil.Resolver{Servers: r.servers[i : i+1], Timeout: t}
		var a *dnsutil.Answer
		if a, err = one.Lookup(ctx, name, qtype); err == nil {
			return a, nil
		}
		if ctx.Err() != nil {
			break // our deadline or our caller's cancel: not the server's fault
		}
		var de *dnsutil.Error
		if errors.As(err, &de) && de.Rcode < 0 {
			// No answer in its share (SERVFAIL is an answer, and about the
			// name: the server may serve the next one well).
			r.paused[i].Store(time.Now().UnixNano())
		}
	}
	return nil, err
}

// LookupAddr returns the PTR names of addr (RFC 1035 3.5, RFC 3596 2.5)
// that are host names.
func (r *dnsResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "bad address", Name: addr}
	}
	name := dnsutil.ReverseName(ip.Unmap())
	a, err := r.lookup(ctx, name, dns.TypePTR)
	if err != nil {
		return nil, lookupError(name, err)
	}
	var names []string
	for _, n := range a.Names() {
		// PTR data is the address owner's choice, and it becomes
		// conn.hostname, logs and Received fields: Go's resolver drops
		// names that are not host names, and so do we.
		if dnsutil.ValidHostname(n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return names, nil
}

// LookupNetIP returns host's addresses: its A records for network "ip4",
// AAAA for "ip6", both for "ip".
func (r *dnsResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	var qtypes []uint16
	switch network {
	case "ip4":
		qtypes = []uint16{dns.TypeA}
	case "ip6":
		qtypes = []uint16{dns.TypeAAAA}
	case "ip":
		qtypes = []uint16{dns.TypeA, dns.TypeAAAA}
	default:
		return nil, net.UnknownNetworkError(network)
	}
	type result struct {
		a   *dnsutil.Answer
		err error
	}
	res := make(chan result, len(qtypes))
	for _, qt := range qtypes {
		go func() {
			a, err := r.lookup(ctx, host, qt)
			res <- result{a, err}
		}()
	}
	var addrs []netip.Addr
	var err error
	for range qtypes {
		x := <-res
		if x.err != nil {
			err = x.err
			continue
		}
		addrs = append(addrs, x.a.Addrs()...)
	}
	switch {
	case len(addrs) > 0:
		return addrs, nil // as Go's: one family's failure hides behind the other's addresses
	case err != nil:
		return nil, lookupError(host, err)
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// lookupError is a failed lookup as Go's resolver returns one, so that
// LookupHost reads both alike. Its text names no server: dnsErrText
// shows only Err.
func lookupError(name string, err error) error {
	de := &net.DNSError{Err: err.Error(), Name: strings.TrimSuffix(name, ".")}
	var e *dnsutil.Error
	if errors.As(err, &e) {
		switch {
		case e.Rcode >= 0:
			de.Err = "server answered " + dns.RcodeToString[e.Rcode]
			de.IsTemporary = true
		case e.Timeout():
			de.Err, de.IsTimeout, de.IsTemporary = "i/o timeout", true, true
		case e.Err != nil:
			de.Err = e.Err.Error()
		}
	}
	return de
}
