// Package dnsbl is the DNS list stage: DNSBLs on the client address,
// DNSWLs that vouch for it, and RHSBLs on the HELO and MAIL FROM domains
// (RFC 5782).
//
// Every zone is asked in parallel, with one timeout for the whole check.
// An IPv4 client is asked as its reversed octets (5.113.0.203.zone), an
// IPv6 client as 32 reversed nibbles (RFC 5782 2.4). An A answer in
// 127.0.0.0/8 that is one of the zone's codes is a listing, and the zone's
// TXT record for the same name gives the reason. Answers are cached for
// their TTL (negative ones for the SOA minimum, RFC 2308), at most max_ttl.
//
// A DNS failure (timeout, SERVFAIL, an answer outside 127.0.0.0/8, or a
// list's "query refused" code: 127.255.255.0/24, and 127.0.0.255 on a
// DNSWL) is never read as "not listed" (nor, on a DNSWL, as "listed"): the check returns an error, which the gateway turns into the
// stage's on_error, unless the listings already decide without the
// failed zone.
//
// # Phases
//
// The stage runs at helo and at mail. At helo it asks the address zones
// and the RHSBL zones about the HELO domain; at mail the same (from the
// cache) plus the RHSBL zones about the MAIL FROM domain, so results.dnsbl
// as rules see it (after mail) covers all three. Running from helo rather
// than connect lets the stage's `when` read a connect-phase stage such as
// connfilter: an allow-listed client skips the DNS lists entirely.
//
// # Config
//
//	zones:
//	  - {zone: bl.example, weight: 2, codes: ["127.0.0.2", "127.0.0.4-127.0.0.7"]}
//	  - {zone: multi.example, codes: ["mask:0.0.0.6"]}  # any of these bits set
//	  - {zone: wl.example, allow: true}                 # DNSWL
//	  - {zone: dbl.example, domain: true}               # RHSBL: HELO and MAIL FROM domains
//	  - plain.example                                   # any 127.0.0.0/8 answer, weight 1
//	threshold: 1        # total weight of listing zones for verdict fail
//	timeout: 2s         # the whole check, all zones
//	max_ttl: 1h         # cache entries live at most this long
//	negative_ttl: 1m    # "not listed" without an SOA minimum
//	cache_size: 10000   # entries
//
// A zone's `ipv6: false` skips IPv6 clients (for lists that have none).
// A client that is not a public address (loopback, private, shared,
// link-local) is not asked of the address zones, only of the RHSBLs,
// unless `check_private: true` (a lab, or a test on loopback).
//
// # Result
//
// A DNSWL listing: verdict pass, tag "dnswl". Else a total weight of block
// listings at or above threshold: verdict fail; below it: neutral; none:
// verdict none. Score is the total weight. Each listing adds a tag
// "<zone>" (and "<zone>:helo" or "<zone>:from" for RHSBL). Attrs: zone
// (the first listing zone in config order), zones, codes ("zone=code,..."),
// reason (that zone's TXT, as published: any bytes, which a reply
// template makes one line of reply text), reasons (all, "zone: text" joined by " | "),
// weight, and allow_zones for DNSWL listings.
package dnsbl

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/idna"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
)

// Stage is the DNS list stage.
type Stage struct {
	now func() time.Time
	cur atomic.Pointer[state]
}

// state is one configuration with its resolver and cache.
type state struct {
	cfg   config
	res   resolver
	cache *cache
}

var (
	_ sdk.Stage         = (*Stage)(nil)
	_ sdk.ConfigChecker = (*Stage)(nil)
)

// New returns a DNS list stage.
func New() sdk.Stage { return &Stage{now: time.Now} }

// Info implements sdk.Stage.
func (s *Stage) Info() sdk.Info {
	return sdk.Info{Name: "dnsbl", Version: "1.0.0", Phases: []sdk.Phase{sdk.PhaseHelo, sdk.PhaseMail}}
}

// Configure implements sdk.Stage. A new config starts with an empty cache
// only when the resolvers changed.
func (s *Stage) Configure(_ context.Context, env sdk.Env, raw map[string]any) error {
	cfg, r, err := load(env, raw)
	if err != nil {
		return err
	}
	st := &state{cfg: cfg, res: r, cache: newCache(cfg.cacheSize, s.now)}
	if old := s.cur.Load(); old != nil && sameServers(old.res, r) {
		st.cache = old.cache
		st.cache.mu.Lock()
		st.cache.max = cfg.cacheSize
		st.cache.mu.Unlock()
	}
	s.cur.Store(st)
	return nil
}

// CheckConfig implements sdk.ConfigChecker: the config and the
// resolvers, without a query.
func (s *Stage) CheckConfig(_ context.Context, env sdk.Env, raw map[string]any) error {
	_, _, err := load(env, raw)
	return err
}

// load reads the config and sets up its resolver (which asks nothing yet).
func load(env sdk.Env, raw map[string]any) (config, *dnsutil.Resolver, error) {
	cfg, err := parseConfig(raw)
	if err != nil {
		return config{}, nil, err
	}
	r, err := dnsutil.New(env.DNSServers)
	if err != nil {
		return config{}, nil, err
	}
	r.Timeout = cfg.timeout
	return cfg, r, nil
}

func sameServers(a resolver, b *dnsutil.Resolver) bool {
	ar, ok := a.(*dnsutil.Resolver)
	return ok && strings.Join(ar.Servers, ",") == strings.Join(b.Servers, ",")
}

// Check implements sdk.Stage.
func (s *Stage) Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error) {
	st := s.cur.Load()
	if st == nil {
		return nil, fmt.Errorf("dnsbl: not configured")
	}
	qs, err := queries(st.cfg.zones, req, st.cfg.checkPrivate)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, st.cfg.timeout)
	defer cancel()
	answers := make([]answer, len(qs))
	var wg sync.WaitGroup
	for i, q := range qs {
		// Cached answers need no goroutine: a connection from a known
		// client costs no scheduling.
		if o, ok := st.cache.get(q.name); ok && o.serves(q.zone) {
			answers[i] = q.answer(o)
			continue
		}
		wg.Go(func() { answers[i] = s.lookup(ctx, st.res, st.cache, st.cfg, q) })
	}
	wg.Wait()
	return decide(answers, st.cfg.threshold)
}

// queries lists the questions for one request, in zone order.
func queries(zones []*zone, req *sdk.Request, checkPrivate bool) ([]query, error) {
	ip, err := netip.ParseAddr(req.Conn.IP)
	if err != nil {
		return nil, fmt.Errorf("dnsbl: bad client address %q", req.Conn.IP)
	}
	ip = ip.Unmap()
	subjects := []struct{ target, domain string }{{"helo", heloDomain(req.Conn.HELO)}}
	if req.Phase != sdk.PhaseHelo {
		subjects = append(subjects, struct{ target, domain string }{"from", senderDomain(req.Envelope.From)})
	}
	asksAddr := checkPrivate || isPublic(ip)
	var qs []query
	for _, z := range zones {
		if !z.domain {
			if asksAddr && (ip.Is4() || z.ipv6) {
				qs = append(qs, query{z, "ip", ip.String(), dnsutil.ReverseLabels(ip) + "." + z.name + "."})
			}
			continue
		}
		for _, sub := range subjects {
			if sub.domain != "" && len(sub.domain)+len(z.name) < 253 {
				qs = append(qs, query{z, sub.target, sub.domain, sub.domain + "." + z.name + "."})
			}
		}
	}
	return qs, nil
}

// sharedSpace is RFC 6598's carrier-grade NAT range, never routed publicly.
var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")

// isPublic reports whether a public list can know ip: not loopback,
// private (RFC 1918, RFC 4193), shared (RFC 6598), link-local or
// unspecified. Every DNSBL lists 127.0.0.2 as its test entry (RFC 5782 5),
// so asking about a loopback client would block it.
func isPublic(ip netip.Addr) bool {
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !sharedSpace.Contains(ip)
}

// heloDomain is the HELO argument when it is a domain name (not an
// address literal, not a bare word), lower case.
func heloDomain(helo string) string {
	return cleanDomain(helo)
}

// senderDomain is the domain of the reverse-path; "" for the null sender.
func senderDomain(from string) string {
	i := strings.LastIndexByte(from, '@')
	if i < 0 {
		return ""
	}
	return cleanDomain(from[i+1:])
}

func cleanDomain(d string) string {
	d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	if !isASCII(d) {
		// An SMTPUTF8 sender's U-labels (RFC 6531) are asked as A-labels (RFC 5891).
		a, err := idna.Lookup.ToASCII(d)
		if err != nil {
			return ""
		}
		d = a
	}
	if !strings.Contains(d, ".") || strings.HasPrefix(d, "[") {
		return ""
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return ""
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return ""
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "" // not a DNS host name (RFC 5321 4.1.2 Domain)
			}
		}
	}
	return d
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
