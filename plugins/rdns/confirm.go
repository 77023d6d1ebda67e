package rdns

import (
	"context"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
)

// confirm returns a name among the first maxNames of names whose A or AAAA
// records hold ip. The names are looked up in parallel: one whose zone
// does not answer must not use up the deadline of a name that would
// confirm. err is a lookup failure, reported only when no name is
// confirmed (the name that failed might have been the one).
func (st *state) confirm(ctx context.Context, ip netip.Addr, names []string) (string, error) {
	qtype := dns.TypeAAAA
	if ip.Is4() {
		qtype = dns.TypeA
	}
	names = names[:min(len(names), st.maxNames)]
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the lookups still running once one confirms
	type outcome struct {
		name string
		ok   bool
		err  error
	}
	out := make(chan outcome, len(names)) // buffered: no sender waits after we return
	for _, name := range names {
		go func() {
			a, err := st.res.Lookup(ctx, name, qtype)
			o := outcome{name: name, err: err}
			if err == nil {
				for _, addr := range a.Addrs() {
					o.ok = o.ok || addr == ip
				}
			}
			out <- o
		}()
	}
	var firstErr error
	for range names {
		o := <-out
		if o.ok {
			return strings.ToLower(o.name), nil
		}
		if o.err != nil && firstErr == nil {
			firstErr = o.err
		}
	}
	return "", firstErr
}

// hostNames returns the names that are host names: PTR data is the
// address owner's choice, and a name that could not be a host's (escaped
// bytes, spaces, an all-numeric name that reads as an address) must not
// become the client's confirmed name in rules and logs, however it
// resolves. Postfix (valid_hostname) and Go's resolver refuse them too.
func hostNames(names []string) []string {
	var out []string
	for _, n := range names {
		if dnsutil.ValidHostname(n) {
			out = append(out, n)
		}
	}
	return out
}
