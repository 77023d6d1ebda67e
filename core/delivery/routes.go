package delivery

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/policy"
)

// TLS modes of a route (CONTRACT.md routes[].tls).
const (
	tlsNone          = "none"
	tlsOpportunistic = "opportunistic"
	tlsRequired      = "required"
	tlsImplicit      = "implicit"
)

// route is a config.Route made ready for use: its password read, its next
// hop split.
type route struct {
	idx         int
	domains     []string
	mx          bool   // next_hop "mx"
	host, port  string // otherwise
	tls         string
	verify      bool
	auth        *routeAuth
	skipLocal   bool
	concurrency int
	// verify_recipients: answers are cached under hopName, the next_hop
	// as written (lower-cased); tempAccept is verify_tempfail: accept.
	verifyRcpts bool
	tempAccept  bool
	hopName     string
}

type routeAuth struct {
	user, pass string
	allowPlain bool
}

// defaultRoute is used when no route matches: MX delivery, as an MTA with
// no relayhost does.
var defaultRoute = &route{idx: -1, mx: true, tls: tlsOpportunistic, concurrency: 20}

// compileRoutes checks and prepares cfg.Routes.
func compileRoutes(cfg *config.Config) ([]*route, error) {
	var out []*route
	for i, r := range cfg.Routes {
		rt := &route{idx: i, tls: r.TLS, skipLocal: r.SkipLocal, concurrency: r.Concurrency,
			verifyRcpts: r.VerifyRecipients, tempAccept: r.VerifyTempfail == "accept", hopName: strings.ToLower(r.NextHop)}
		for _, d := range r.Domains {
			rt.domains = append(rt.domains, strings.ToLower(strings.TrimSuffix(d, ".")))
		}
		if rt.tls == "" {
			rt.tls = config.DefaultRouteTLS
		}
		if rt.concurrency <= 0 {
			rt.concurrency = config.DefaultConcurrency
		}
		switch rt.tls {
		case tlsNone, tlsOpportunistic, tlsRequired, tlsImplicit:
		default:
			return nil, fmt.Errorf("routes[%d]: tls %q: want none, opportunistic, required or implicit", i, rt.tls)
		}
		// Verification is on for required/implicit unless turned off; an
		// opportunistic session verifies nothing (RFC 7435: any TLS beats none).
		rt.verify = rt.tls == tlsRequired || rt.tls == tlsImplicit
		if r.TLSVerify != nil {
			rt.verify = *r.TLSVerify && rt.tls != tlsOpportunistic
		}
		if err := rt.setHop(r.NextHop); err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		if r.Auth != nil {
			a, err := readAuth(cfg, r.Auth)
			if err != nil {
				return nil, fmt.Errorf("routes[%d]: %w", i, err)
			}
			rt.auth = a
		}
		out = append(out, rt)
	}
	return out, nil
}

func (rt *route) setHop(hop string) error {
	if strings.EqualFold(hop, "mx") || hop == "" {
		rt.mx = true
		return nil
	}
	host, port, err := net.SplitHostPort(hop)
	if err != nil {
		host, port = hop, "25"
	}
	if host == "" {
		return fmt.Errorf("next_hop %q: no host", hop)
	}
	rt.host, rt.port = strings.Trim(host, "[]"), port
	return nil
}

func readAuth(cfg *config.Config, a *config.RouteAuth) (*routeAuth, error) {
	path := a.PasswordFile
	if path != "" && !filepath.IsAbs(path) {
		path = filepath.Join(cfg.Dir, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth password_file: %w", err)
	}
	pass := strings.TrimRight(string(b), "\r\n")
	if a.Username == "" || pass == "" {
		return nil, fmt.Errorf("auth: username and a non-empty password_file are needed")
	}
	return &routeAuth{user: a.Username, pass: pass, allowPlain: a.AllowPlaintext}, nil
}

// matchDomain reports whether pattern (exact, "*.suffix" or "*") covers domain.
func matchDomain(pattern, domain string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasPrefix(pattern, "*."):
		return strings.HasSuffix(domain, pattern[1:])
	}
	return pattern == domain
}

// pick returns the first route for domain (CONTRACT.md: first match wins);
// a skip_local route is passed over for relay.domains.
func pick(routes []*route, local policy.Domains, domain string) *route {
	for _, rt := range routes {
		if rt.skipLocal && local.Has(domain) {
			continue
		}
		for _, p := range rt.domains {
			if matchDomain(p, domain) {
				return rt
			}
		}
	}
	return defaultRoute
}

// destKey names where a recipient goes: one transaction, one connection
// pool and one concurrency limit per key.
func (rt *route) destKey(domain string) string {
	if rt.mx {
		return fmt.Sprintf("r%d mx %s", rt.idx, domain)
	}
	return fmt.Sprintf("r%d %s", rt.idx, net.JoinHostPort(rt.host, rt.port))
}

// domainOf returns the lower-cased domain of addr.
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
}
