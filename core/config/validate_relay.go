package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ValidDomain reports whether s is a host name as RFC 5321 4.1.2 Domain
// allows: dot-separated labels of letters, digits and inner hyphens, each
// at most 63 octets, 253 in all, no trailing dot. Internationalised names
// must be written in their xn-- (A-label) form.
func ValidDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func (v *validator) relay() {
	r := &v.cfg.Relay
	for i := range r.Domains {
		d := &r.Domains[i]
		*d = strings.ToLower(strings.TrimSpace(*d))
		name := *d
		if strings.HasPrefix(name, "*.") || strings.HasPrefix(name, ".") {
			name = strings.TrimPrefix(strings.TrimPrefix(name, "*"), ".")
		}
		if !ValidDomain(name) {
			v.errorf(v.at(d), "relay.domains[%d]: %q is not a domain name (example.test, or .example.test / *.example.test for subdomains)", i, *d)
		}
	}
	v.file(&r.UsersFile, "relay.users_file")
	v.file(&r.Recipients, "relay.recipients")
}

func (v *validator) routes() {
	for i := range v.cfg.Routes {
		rt := &v.cfg.Routes[i]
		key := fmt.Sprintf("routes[%d]", i)
		if len(rt.Domains) == 0 {
			v.errorf(v.at(&rt.Domains, rt), "%s.domains: must list at least one domain (or \"*\")", key)
		}
		for j := range rt.Domains {
			d := &rt.Domains[j]
			*d = strings.ToLower(strings.TrimSpace(*d))
			if *d != "*" && !ValidDomain(strings.TrimPrefix(*d, "*.")) {
				v.errorf(v.at(d), "%s.domains[%d]: %q is not a domain, \"*.suffix\" or \"*\"", key, j, *d)
			}
		}
		if rt.NextHop == "" {
			v.errorf(v.at(&rt.NextHop, rt), "%s.next_hop: missing: want \"mx\" or host:port", key)
		} else if rt.NextHop != "mx" {
			if err := hostPort(rt.NextHop, false); err != nil {
				v.errorf(v.at(&rt.NextHop, rt), "%s.next_hop: want \"mx\" or host:port: %v", key, err)
			}
		}
		v.oneOf(&rt.TLS, key+".tls", "none", "opportunistic", "required", "implicit")
		if rt.TLSVerify != nil && *rt.TLSVerify && (rt.TLS == "opportunistic" || rt.TLS == "none") {
			// An explicit demand the route cannot keep: an opportunistic
			// session verifies nothing (RFC 7435), and would go on in clear
			// where a check failed. A Postfix admin reads it as "verify".
			v.errorf(v.at(rt.TLSVerify, rt), "%s.tls_verify: true has no effect with tls: %s; use tls: required to verify the next hop's certificate", key, rt.TLS)
		}
		if rt.Concurrency <= 0 {
			v.errorf(v.at(&rt.Concurrency), "%s.concurrency: must be positive", key)
		}
		if rt.Auth != nil {
			v.routeAuth(rt, key)
		}
		v.routeVerify(i, rt, key)
	}
}

// routeVerify checks verify_recipients where it can mean something: a
// route that carries mail for relay.domains to a server of ours behind
// the gateway, which is the one that knows the mailboxes.
func (v *validator) routeVerify(i int, rt *Route, key string) {
	if _, set := v.pos[&rt.VerifyTempfail]; set {
		v.oneOf(&rt.VerifyTempfail, key+".verify_tempfail", "defer", "accept")
		if !rt.VerifyRecipients {
			v.errorf(v.at(&rt.VerifyTempfail), "%s.verify_tempfail: has no effect without verify_recipients: true", key)
		}
	}
	if !rt.VerifyRecipients {
		return
	}
	at := v.at(&rt.VerifyRecipients, rt)
	switch {
	case rt.SkipLocal:
		v.errorf(at, "%s.verify_recipients: a skip_local route never carries mail for relay.domains, so it has no recipients to verify", key)
	case rt.NextHop == "mx":
		// By MX, mail for relay.domains comes back to this gateway (or
		// to the other front doors, which take any address): the
		// mailboxes are known only to the server behind, a host:port.
		v.errorf(at, "%s.verify_recipients: needs next_hop host:port (the server behind the gateway that knows the mailboxes); by MX the probe would ask this gateway or another front door", key)
	case !slices.ContainsFunc(rt.Domains, func(d string) bool { return overlapsLocal(d, v.cfg.Relay.Domains) }):
		v.errorf(at, "%s.verify_recipients: none of the route's domains is in relay.domains, and only their recipients are verified", key)
	default:
		if j := v.shadowedBy(i, rt); j >= 0 {
			v.errorf(at, "%s.verify_recipients: routes[%d] comes first for every relay.domains domain of this route (the first match wins), so it would verify no recipient; put this route before it", key, j)
		}
	}
}

// shadowedBy returns the index of an earlier route that is picked before
// routes[i] for each of its patterns that covers relay.domains (delivery's
// pick: first match, skip_local routes passed over for relay.domains), or
// -1 when some of them can reach routes[i].
func (v *validator) shadowedBy(i int, rt *Route) int {
	first := -1
	for _, p := range rt.Domains {
		if !overlapsLocal(p, v.cfg.Relay.Domains) {
			continue
		}
		j := slices.IndexFunc(v.cfg.Routes[:i], func(e Route) bool {
			return !e.SkipLocal && slices.ContainsFunc(e.Domains, func(q string) bool { return covers(q, p) })
		})
		if j < 0 {
			return -1
		}
		if first < 0 {
			first = j
		}
	}
	return first
}

// covers reports whether route pattern q matches every domain pattern p
// matches (patterns as delivery matches them: exact, "*.suffix" for the
// subdomains of suffix, "*").
func covers(q, p string) bool {
	switch {
	case q == "*" || q == p:
		return true
	case strings.HasPrefix(q, "*."):
		// p's domains (p itself, or the subdomains of p's suffix) all end
		// in q's ".suffix".
		return strings.HasSuffix(strings.TrimPrefix(p, "*"), q[1:]) && p != "*"
	}
	return false
}

// overlapsLocal reports whether a route's domain pattern (exact, "*.suffix"
// or "*") covers a domain of relay.domains (exact, or ".suffix" /
// "*.suffix" for the subdomains of suffix).
func overlapsLocal(pattern string, local []string) bool {
	for _, d := range local {
		sub := strings.HasPrefix(d, ".") || strings.HasPrefix(d, "*.")
		d = "." + strings.TrimLeft(d, "*.")
		switch {
		case pattern == "*":
			return true
		case strings.HasPrefix(pattern, "*."):
			// Subdomains of p, against d itself or its subdomains.
			p := pattern[1:]
			if strings.HasSuffix(d, p) && (len(d) > len(p) || sub) || sub && strings.HasSuffix(p, d) {
				return true
			}
		case sub && strings.HasSuffix(pattern, d):
			return true
		case !sub && "."+pattern == d:
			return true
		}
	}
	return false
}

func (v *validator) routeAuth(rt *Route, key string) {
	a := rt.Auth
	if a.Username == "" {
		v.errorf(v.at(&a.Username, a), "%s.auth.username: must not be empty", key)
	}
	if a.PasswordFile == "" {
		v.errorf(v.at(&a.PasswordFile, a), "%s.auth.password_file: must be set", key)
	} else {
		v.file(&a.PasswordFile, key+".auth.password_file")
	}
	// Credentials in clear text over the Internet are a gift to anyone
	// on the path; opportunistic TLS can be stripped by the same people.
	if (rt.TLS == "none" || rt.TLS == "opportunistic") && !a.AllowPlaintext {
		v.errorf(v.at(&rt.TLS, a), "%s.tls: %s would send the password without TLS; use required or implicit, or set auth.allow_plaintext", key, rt.TLS)
	}
}

func (v *validator) queue() {
	q := &v.cfg.Queue
	if q.Dir == "" {
		v.errorf(v.at(&q.Dir), "queue.dir: must not be empty")
	}
	v.resolve(&q.Dir)
	if q.Quarantine == "" {
		v.errorf(v.at(&q.Quarantine), "queue.quarantine_dir: must not be empty")
	}
	v.resolve(&q.Quarantine)
	if q.Dir != "" && q.Quarantine != "" {
		v.separateDirs(q)
	}
	if len(q.Retry) == 0 {
		v.errorf(v.at(&q.Retry), "queue.retry: must list at least one interval")
	}
	for i := range q.Retry {
		if q.Retry[i] <= 0 {
			v.errorf(v.at(&q.Retry[i]), "queue.retry[%d]: must be positive", i)
		}
	}
	if q.MaxAge <= 0 {
		v.errorf(v.at(&q.MaxAge), "queue.max_age: must be positive")
	}
	v.oneOf(&q.Bounce, "queue.bounce", "local", "all", "none")
	if q.Workers <= 0 {
		v.errorf(v.at(&q.Workers), "queue.workers: must be positive")
	}
	if q.MinFree < 0 {
		v.errorf(v.at(&q.MinFree), "queue.min_free: must not be negative")
	}
}

// separateDirs refuses a quarantine that shares the queue's directory
// tree: the queue's workers and `queue flush` deliver what they find
// under queue.dir, so a quarantined message there would be delivered,
// and a queue inside the quarantine would be listed (and released) as
// quarantined mail. Both paths are absolute by now; symbolic links are
// followed as far as the paths exist, so that two names of one directory
// are caught too.
func (v *validator) separateDirs(q *Queue) {
	dir, quar := realPath(q.Dir), realPath(q.Quarantine)
	var how string
	switch {
	case dir == quar:
		how = "is the same directory as queue.dir"
	case inside(quar, dir):
		how = "lies inside queue.dir"
	case inside(dir, quar):
		how = "contains queue.dir"
	default:
		return
	}
	v.errorf(v.at(&q.Quarantine, &q.Dir), "queue.quarantine_dir: %s %s %s: quarantined mail would be delivered by the queue; use a directory of its own",
		q.Quarantine, how, q.Dir)
}

// realPath is p cleaned, with symbolic links resolved in the longest
// part of it that exists.
func realPath(p string) string {
	p = filepath.Clean(p)
	rest := ""
	for cur := p; ; cur = filepath.Dir(cur) {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		if filepath.Dir(cur) == cur {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
	}
}

// inside reports whether path p lies strictly inside directory dir.
func inside(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func (v *validator) misc() {
	c := v.cfg
	v.oneOf(&c.Log.Format, "log.format", "text", "json")
	v.oneOf(&c.Log.Level, "log.level", "debug", "info", "warn", "error")
	if c.Metrics.Address != "" {
		if err := hostPort(c.Metrics.Address, true); err != nil {
			v.errorf(v.at(&c.Metrics.Address), "metrics.address: %v", err)
		}
	}
	for i := range c.DNS.Servers {
		if ip, ok := bareAddr(c.DNS.Servers[i]); ok {
			c.DNS.Servers[i] = netip.AddrPortFrom(ip, 53).String()
		}
		if err := hostPort(c.DNS.Servers[i], false); err != nil {
			v.errorf(v.at(&c.DNS.Servers[i]), "dns.servers[%d]: %v", i, err)
		}
	}
	if c.DNS.Timeout <= 0 {
		v.errorf(v.at(&c.DNS.Timeout), "dns.timeout: must be positive")
	}
	v.state()
	for i := range c.DKIM.Sign {
		k := &c.DKIM.Sign[i]
		key := fmt.Sprintf("dkim.sign[%d]", i)
		if !ValidDomain(k.Domain) {
			v.errorf(v.at(&k.Domain, k), "%s.domain: %q is not a domain name", key, k.Domain)
		}
		if k.Selector == "" {
			v.errorf(v.at(&k.Selector, k), "%s.selector: must not be empty", key)
		}
		if k.Key == "" {
			v.errorf(v.at(&k.Key, k), "%s.key: must be set", key)
		}
		v.file(&k.Key, key+".key")
		if len(k.Headers) > 0 && !slices.ContainsFunc(k.Headers, func(h string) bool { return strings.EqualFold(h, "From") }) {
			v.errorf(v.at(&k.Headers, k), "%s.headers: must include From (RFC 6376 5.4)", key)
		}
		for j, h := range k.Headers {
			switch {
			case strings.EqualFold(h, "Received"), strings.EqualFold(h, "Return-Path"):
				// RFC 6376 5.4.1: added on the way, so the signature would break.
				v.errorf(v.at(&k.Headers[j]), "%s.headers[%d]: %s is added by relays on the way and must not be signed", key, j, h)
			case h == "" || strings.ContainsAny(h, ": \t\r\n"):
				v.errorf(v.at(&k.Headers[j]), "%s.headers[%d]: %q is not a header field name", key, j, h)
			}
		}
	}
	c.keyAt = map[string][2]int{}
	for key, p := range map[string]*string{"queue.dir": &c.Queue.Dir, "queue.quarantine_dir": &c.Queue.Quarantine} {
		n := v.at(p, &c.Queue)
		c.keyAt[key] = [2]int{n.Line, n.Column}
	}
	for i := range c.DKIM.Sign {
		n := v.at(&c.DKIM.Sign[i].Key, &c.DKIM.Sign[i])
		c.keyAt[fmt.Sprintf("dkim.sign[%d].key", i)] = [2]int{n.Line, n.Column}
	}
	for i := range c.Include {
		n := v.at(&c.Include[i])
		c.keyAt[fmt.Sprintf("include[%d]", i)] = [2]int{n.Line, n.Column}
		v.resolve(&c.Include[i])
		if _, err := filepath.Match(c.Include[i], ""); err != nil {
			v.errorf(v.at(&c.Include[i]), "include[%d]: bad pattern: %v", i, err)
		}
	}
}

func (v *validator) state() {
	s := &v.cfg.State
	if s.Redis != "" {
		if problem := redisURLProblem(s.Redis); problem != "" {
			v.errorf(v.at(&s.Redis), "state.redis: %s", problem)
		}
		if s.Path != "" { // stages that keep local files still use it
			v.resolve(&s.Path)
		}
		return
	}
	if s.Path == "" {
		v.errorf(v.at(&s.Path, s), "state.path: must be set (or state.redis)")
	}
	v.resolve(&s.Path)
}

// redisURLProblem says what is wrong with a state.redis URL, "" if nothing
// is, without repeating the value: it may hold a password, and check's
// output goes to the journal (ExecStartPre).
func redisURLProblem(raw string) string {
	const form = "redis://[:PASSWORD@]HOST:PORT/DB or rediss://..."
	u, err := url.Parse(raw)
	if err != nil {
		// Not even the parser's reason: it quotes the text it could not
		// read ('invalid port ":Xk9p" after host' of a password with a '/').
		return "not a URL (a password holding / # ? or % must be %-escaped); want " + form
	}
	if (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return "not a redis:// or rediss:// URL; want " + form
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("%s: bad port %q", u.Redacted(), p)
		}
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return fmt.Sprintf("%s: the database %q is not a number from 0", u.Redacted(), db)
		}
	}
	return ""
}

// bareAddr is s as an address without a port ("192.0.2.1", "2001:db8::1",
// "[2001:db8::1]"), which in dns.servers is port 53, as in resolv.conf; a
// link-local address keeps its zone (resolv.conf's fe80::1%eth0). Brackets
// come in pairs: "[::1" is a typing mistake, not ::1.
func bareAddr(s string) (netip.Addr, bool) {
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if s, ok = strings.CutSuffix(inner, "]"); !ok {
			return netip.Addr{}, false
		}
	}
	ip, err := netip.ParseAddr(s)
	return ip, err == nil
}
