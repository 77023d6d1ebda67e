package dnsbl

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
)

// resolver is what the stage needs of DNS.
type resolver interface {
	Lookup(ctx context.Context, name string, qtype uint16) (*dnsutil.Answer, error)
}

// query is one question to one zone about one subject.
type query struct {
	zone    *zone
	target  string // "ip", "helo" or "from"
	subject string // the address or domain asked about
	name    string // the DNS name asked
}

// answer is a query's result.
type answer struct {
	q      query
	codes  []string // matching answers; none means not listed
	reason string
	err    error
}

// dnswlRefused, 127.0.0.255, is what DNSWL.org answers to a query over its
// free use limit or from a blocked resolver. Read as a listing it would
// vouch for every client (and skip what rules skip for a DNSWL pass), so
// on an allow zone it is a failure, as 127.255.255.0/24 is on any zone.
const dnswlRefused = 127<<24 | 255

// lookup asks one name, from the cache when it can. RFC 5782 2.1: an A
// record in 127.0.0.0/8 means listed. An answer outside it means a
// wildcarding or hijacking resolver, and 127.255.255.0/24 is what large
// lists answer to refused (for example open-resolver) queries, as
// 127.0.0.255 is on a DNSWL: all are failures, never "not listed" and
// never "listed".
func (s *Stage) lookup(ctx context.Context, r resolver, c *cache, cfg config, q query) answer {
	o, ok := c.get(q.name)
	if !ok || !o.serves(q.zone) {
		var ttl time.Duration
		var err error
		o, ttl, err = s.ask(ctx, r, cfg, q)
		if err != nil {
			return answer{q: q, err: err}
		}
		c.put(q.name, o, ttl)
	}
	return q.answer(o)
}

// answer reads an outcome with the query's zone codes.
func (q query) answer(o outcome) answer {
	out := answer{q: q}
	for _, a := range o.addrs {
		if q.zone.counts(a) {
			out.codes = append(out.codes, ipString(a))
		}
	}
	if len(out.codes) > 0 {
		out.reason = o.reason
	}
	return out
}

// zoneRefusal is an answer by which a zone will not say (127.255.255.x,
// DNSWL.org's 127.0.0.255 to a resolver over its query limit) or cannot
// (not a DNSBL code) whether a client is listed. Unlike a DNS failure it
// lasts: a DNSWL's refusal does not hold a block listing back (decide),
// or every listed client would be deferred for as long as it refuses.
type zoneRefusal string

func (e zoneRefusal) Error() string { return string(e) }

func (s *Stage) ask(ctx context.Context, r resolver, cfg config, q query) (outcome, time.Duration, error) {
	a, err := r.Lookup(ctx, q.name, dns.TypeA)
	if err != nil {
		return outcome{}, 0, err
	}
	var o outcome
	for _, ip := range a.Addrs() {
		if !ip.Is4() {
			continue
		}
		b := ip.As4()
		v := binary.BigEndian.Uint32(b[:])
		switch {
		case b[0] != 127:
			return outcome{}, 0, zoneRefusal(fmt.Sprintf("%s answered %s: not a DNSBL code (wildcard or hijacking resolver?)", q.zone.name, ip))
		case b[1] == 255 && b[2] == 255, q.zone.allow && v == dnswlRefused:
			return outcome{}, 0, zoneRefusal(fmt.Sprintf("%s refused the query (answer %s)", q.zone.name, ip))
		}
		o.addrs = append(o.addrs, v)
	}
	ttl := time.Duration(a.TTL) * time.Second
	if len(a.Records) == 0 && ttl == 0 {
		ttl = cfg.negTTL
	}
	listed := false
	for _, v := range o.addrs {
		listed = listed || q.zone.counts(v)
	}
	if listed {
		// A TXT failure does not undo the listing: the reason is left
		// empty, and the outcome is not cached, so that the next check
		// asks again rather than reply without a reason for the whole TTL.
		t, err := r.Lookup(ctx, q.name, dns.TypeTXT)
		if err != nil {
			return o, 0, nil
		}
		o.reason, o.txt = strings.Join(t.Texts(), "; "), true
	}
	return o, min(ttl, cfg.maxTTL), nil
}

// counts reports whether answer a is one of the zone's codes.
func (z *zone) counts(a uint32) bool {
	if len(z.codes) == 0 {
		return true
	}
	for _, c := range z.codes {
		if c.match(a) {
			return true
		}
	}
	return false
}

func ipString(v uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return net.IP(b[:]).String()
}
