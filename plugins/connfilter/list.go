package connfilter

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"path"
	"strings"

	"golang.org/x/net/idna"

	"github.com/portcullis-mta/portcullis/sdk/cfgval"
)

// list is one compiled deny or allow list.
type list struct {
	name      string                  // "deny" or "allow"
	prefixes  map[netip.Prefix]string // masked prefix -> entry as written
	lengths4  []int                   // distinct IPv4 prefix lengths present, longest first
	lengths6  []int                   // distinct IPv6 prefix lengths present
	countries map[string]string       // ISO code -> entry as written

	// Host patterns, by kind so that a list of many thousands costs a few
	// map lookups per client, not a pass over every pattern. Where several
	// match, the one written first (the lowest pos) is reported.
	nHosts int
	exact  map[string]hostRef // "mail.example"
	below  map[string]hostRef // "*.example" by "example": any name below it
	globs  []hostPattern      // the others, in order
}

type hostPattern struct {
	pattern string // lower case, no final dot
	hostRef
}

type hostRef struct {
	pos   int // the pattern's place among the list's host patterns
	entry string
}

func newList(name string) *list {
	return &list{name: name, prefixes: map[netip.Prefix]string{}, countries: map[string]string{},
		exact: map[string]hostRef{}, below: map[string]hostRef{}}
}

// add parses one entry:
//
//	203.0.113.5  2001:db8::1          an address
//	198.51.100.0/24  2001:db8::/32    a CIDR prefix
//	192.0.2.0,255.255.255.0           an "address,mask" range (contiguous mask)
//	*.dyn.example  mail.example       a host pattern (host: prefix optional)
//	JP  country:CN                    an ISO 3166 country code
func (l *list) add(entry string) error {
	e := strings.TrimSpace(entry)
	switch {
	case e == "":
		return fmt.Errorf("empty entry")
	case hasPrefixFold(e, "host:"):
		return l.addHost(e[5:], entry)
	case hasPrefixFold(e, "country:"):
		return l.addCountry(e[8:], entry)
	case hasPrefixFold(e, "ip:"):
		return l.addIP(e[3:], entry)
	}
	if p, err := parseIPEntry(e); err == nil {
		l.addPrefix(p, e)
		return nil
	} else if looksLikeIP(e) {
		return err
	}
	if isCountry(strings.ToUpper(e)) { // a two-letter host name would be no use
		return l.addCountry(e, entry)
	}
	return l.addHost(e, entry)
}

func (l *list) addIP(s, entry string) error {
	p, err := parseIPEntry(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	l.addPrefix(p, strings.TrimSpace(entry))
	return nil
}

func (l *list) addPrefix(p netip.Prefix, entry string) {
	if _, dup := l.prefixes[p]; dup {
		return
	}
	l.prefixes[p] = entry
	if p.Addr().Is4() {
		l.lengths4 = insertLen(l.lengths4, p.Bits())
	} else {
		l.lengths6 = insertLen(l.lengths6, p.Bits())
	}
}

func insertLen(ls []int, n int) []int {
	for i, v := range ls {
		if v == n {
			return ls
		}
		if v < n {
			return append(ls[:i], append([]int{n}, ls[i:]...)...)
		}
	}
	return append(ls, n)
}

func (l *list) addCountry(s, entry string) error {
	cc := strings.ToUpper(strings.TrimSpace(s))
	if !isCountry(cc) {
		return fmt.Errorf("bad country code %q (want two letters, ISO 3166)", s)
	}
	l.countries[cc] = strings.TrimSpace(entry)
	return nil
}

func (l *list) addHost(s, entry string) error {
	p := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	if p == "" || strings.ContainsAny(p, " \t/\\[]") {
		return fmt.Errorf("bad host pattern %q", s)
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("bad host pattern %q: %v", s, err)
	}
	p, err := aLabels(p)
	if err != nil {
		return fmt.Errorf("bad host pattern %q: %v", s, err)
	}
	if why := badHostPattern(p); why != "" {
		return fmt.Errorf("bad host pattern %q: %s", s, why)
	}
	ref := hostRef{l.nHosts, strings.TrimSpace(entry)}
	l.nHosts++
	rest, sub := strings.CutPrefix(p, "*.")
	switch {
	case !strings.ContainsAny(p, "*?["):
		if _, dup := l.exact[p]; !dup {
			l.exact[p] = ref
		}
	case sub && !strings.ContainsAny(rest, "*?["):
		if _, dup := l.below[rest]; !dup {
			l.below[rest] = ref
		}
	default:
		l.globs = append(l.globs, hostPattern{p, ref})
	}
	return nil
}

// badHostPattern says why pattern p (lower case, A-labels, no final dot)
// can match no client's name, or "". The names it is matched against are
// host names, as the gateway confirms no other (dnsutil.ValidHostname):
// letters, digits, '-' and '_' in labels of at most 63 octets that
// neither start nor end with '-', the last one not a number, at most 253
// octets in all ('*' may stand for nothing, '?' for a dot). An
// entry that is neither an address nor such a pattern would load as a host
// pattern that never matches, with nothing said: an address range
// (10.0.0.1-10.0.0.255), an address with a stray character
// (203.0.113.5;, or a comment with no space before its '#'), Postfix's
// .example for the names below a domain.
func badHostPattern(p string) string {
	labels := strings.Split(p, ".")
	for _, l := range labels {
		if l == "" {
			return "an empty label (the names below a domain are *.example)"
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '*' || c == '?') {
				return fmt.Sprintf("%q is in no host name", c)
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "a label that starts or ends with '-'"
		}
		for _, run := range strings.FieldsFunc(l, func(c rune) bool { return c == '*' || c == '?' }) {
			if len(run) > 63 {
				return "a label longer than 63 octets"
			}
		}
	}
	if len(p)-strings.Count(p, "*") > 253 {
		return "longer than 253 octets"
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "no host name ends in a number (an address range is a CIDR or address,mask)"
	}
	// What a wildcard of the last label stands for is in the name's last
	// label too: after 63 digits, it makes that label too long or a number.
	last := labels[len(labels)-1]
	if tail := last[strings.LastIndexAny(last, "*?")+1:]; len(tail) >= 63 && strings.Trim(tail, "0123456789") == "" {
		return "no host name ends in a number (an address range is a CIDR or address,mask)"
	}
	return ""
}

// aLabels writes the Unicode labels of a host pattern as A-labels (RFC
// 5890 2.3.2.1), the form names have in DNS and so in conn.hostname:
// "*.bücher.example" matches mx.xn--bcher-kva.example.
func aLabels(p string) (string, error) {
	labels := strings.Split(p, ".")
	for i, label := range labels {
		if isASCII(label) {
			continue
		}
		if strings.ContainsAny(label, "*?[") {
			return "", fmt.Errorf("a wildcard inside a non-ASCII label cannot match its xn-- form")
		}
		a, err := idna.Lookup.ToASCII(label)
		if err != nil {
			return "", err
		}
		labels[i] = a
	}
	return strings.Join(labels, "."), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// parseIPEntry reads an address, a CIDR prefix or an "address,mask" range
// as a masked prefix (IPv4-mapped IPv6 addresses become IPv4).
func parseIPEntry(s string) (netip.Prefix, error) {
	if a, m, ok := strings.Cut(s, ","); ok {
		addr, err := netip.ParseAddr(strings.TrimSpace(a))
		mask, err2 := netip.ParseAddr(strings.TrimSpace(m))
		if err != nil || err2 != nil || !addr.Unmap().Is4() || !mask.Is4() {
			return netip.Prefix{}, fmt.Errorf("bad range %q (want IPv4 address,mask)", s)
		}
		bits, ok := maskBits(mask.As4())
		if !ok {
			return netip.Prefix{}, fmt.Errorf("bad range %q: mask is not contiguous", s)
		}
		return netip.PrefixFrom(addr.Unmap(), bits).Masked(), nil
	}
	p, err := cfgval.Network(s)
	if err != nil {
		if strings.Contains(s, "/") {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q", s)
		}
		return netip.Prefix{}, fmt.Errorf("bad address %q", s)
	}
	return p, nil
}

func maskBits(m [4]byte) (int, bool) {
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	n := 0
	for v&0x80000000 != 0 {
		n++
		v <<= 1
	}
	return n, v == 0
}

// looksLikeIP tells a mistyped address (an error) from a host pattern.
func looksLikeIP(s string) bool {
	if strings.ContainsAny(s, ":/,") {
		return true
	}
	for _, r := range s {
		if (r < '0' || r > '9') && r != '.' {
			return false
		}
	}
	return true
}

// matchIP returns the entry covering ip, or "".
func (l *list) matchIP(ip netip.Addr) string {
	lengths := l.lengths6
	if ip.Is4() {
		lengths = l.lengths4
	}
	for _, n := range lengths {
		p, _ := ip.Prefix(n)
		if e, ok := l.prefixes[p]; ok {
			return e
		}
	}
	return ""
}

// matchHost returns the first pattern matching host, or "". "*.x.example"
// matches every name below x.example, however deep; other patterns are
// shell globs over the whole name.
func (l *list) matchHost(host string) string {
	if host == "" || l.nHosts == 0 {
		return ""
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	best := hostRef{pos: l.nHosts}
	if r, ok := l.exact[host]; ok {
		best = r
	}
	for rest := host; ; {
		_, after, ok := strings.Cut(rest, ".")
		if !ok {
			break
		}
		if r, ok := l.below[after]; ok && r.pos < best.pos {
			best = r
		}
		rest = after
	}
	for _, h := range l.globs {
		if h.pos >= best.pos {
			break
		}
		if ok, _ := path.Match(h.pattern, host); ok {
			best = h.hostRef
			break
		}
	}
	return best.entry
}

// parseListFile reads one entry a line; '#' starts a comment (at the start
// of a line, or after white space), blank lines are skipped. Lines in the
// original server's filter format (ACTION/TYPE/VALUE) go to deny or allow
// by their action, whichever list the file was given for.
func parseListFile(name string, r io.Reader, own *list, deny, allow *list) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := stripComment(sc.Text())
		if line == "" {
			continue
		}
		var err error
		if target, entry, ok, ferr := filterLine(line, deny, allow); ferr != nil {
			err = ferr
		} else if ok {
			err = target.add(entry)
		} else if own == nil {
			err = fmt.Errorf("want ACTION/TYPE/VALUE (REJECT/IP/203.0.113.5, PASS/HOST/*.example)")
		} else {
			err = own.add(line)
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %v", name, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	return nil
}

func stripComment(s string) string {
	s = strings.TrimPrefix(s, "\ufeff")
	if i := strings.IndexByte(s, '#'); i == 0 || i > 0 && (s[i-1] == ' ' || s[i-1] == '\t') {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// filterLine reads the original server's filter line format:
//
//	REJECT/IP/203.0.113.5     PASS/IP/127.0.0.1     REJECT/IP/198.51.100.0/24
//	REJECT/HOST/*.dyn.example PASS/HOST/mail.partner.example
//
// ok is false when line is not in that format.
func filterLine(line string, deny, allow *list) (target *list, entry string, ok bool, err error) {
	f := strings.SplitN(line, "/", 3)
	if len(f) != 3 {
		return nil, "", false, nil
	}
	switch strings.ToUpper(f[0]) {
	case "REJECT", "DENY":
		target = deny
	case "PASS", "ACCEPT", "ALLOW":
		target = allow
	default:
		return nil, "", false, nil
	}
	v := strings.TrimSpace(f[2])
	switch strings.ToUpper(f[1]) {
	case "IP":
		return target, "ip:" + v, true, nil
	case "HOST":
		return target, "host:" + v, true, nil
	case "COUNTRY":
		return target, "country:" + v, true, nil
	}
	return nil, "", false, fmt.Errorf("unknown filter type %q (want IP, HOST or COUNTRY)", f[1])
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
