// Package policy decides whose mail the gateway accepts and who may relay
// through it. There is no hidden trust: only clients in relay.networks and
// clients that authenticated may send anywhere; everyone else may send only
// to relay.domains (RFC 5321 3.6.1, RFC 5321 7.1 on open relays).
package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/portcullis-mta/portcullis/core/config"
)

// Address is a parsed RFC 5321 Mailbox. The zero Address is the null
// reverse-path "<>".
type Address struct {
	Local   string // as the client sent it, unquoted (go-smtp strips quoting)
	Domain  string // lower-cased; A-label (xn--) form; "[192.0.2.1]" or "[ipv6:...]" when Literal
	Literal bool   // Domain is an address literal (RFC 5321 4.1.3)
}

// IsNull reports the null path.
func (a Address) IsNull() bool { return a.Local == "" && a.Domain == "" }

// String is the address in RFC 5321 form, the local part quoted if needed.
func (a Address) String() string {
	if a.IsNull() {
		return ""
	}
	if isDotString(a.Local) {
		return a.Local + "@" + a.Domain
	}
	q := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a.Local)
	return `"` + q + `"@` + a.Domain
}

// WirePath returns addr, an address as go-smtp hands it over and the queue
// keeps it (quoting removed: "john smith"@x is `john smith@x`), in RFC 5321
// form for a MAIL or RCPT command: the local part (before the last "@")
// quoted when it is not a Dot-string. Sent as kept, such an address is a
// syntax error at the next hop, or a different address.
func WirePath(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return addr
	}
	return Address{Local: addr[:i], Domain: addr[i+1:]}.String()
}

// IP returns the address of a literal domain (invalid for a name).
func (a Address) IP() netip.Addr {
	if !a.Literal {
		return netip.Addr{}
	}
	s := strings.TrimSuffix(strings.TrimPrefix(a.Domain, "["), "]")
	ip, _ := netip.ParseAddr(strings.TrimPrefix(s, "ipv6:"))
	return ip
}

// Limits of RFC 5321 4.5.3.1.
const (
	maxLocal  = 64
	maxDomain = 255
	maxPath   = 256
)

// ParsePath parses a path as go-smtp hands it to Mail() and Rcpt(): the
// mailbox without angle brackets, a source route already dropped, quoting
// already removed ("a b"@x arrives as `a b@x`). Because of that unquoting
// the domain is what follows the LAST "@": `"u@V"@R` arrives as `u@V@R` and
// is local part "u@V" at R, never u at "V@R". "" is the null path.
//
// The grammar is RFC 5321 4.1.2 Mailbox, read strictly: no trailing dot,
// no empty labels, address literals only for IPv4 and IPv6 (4.1.3),
// lengths of 4.5.3.1. A source route ("@R1,@R2:u@V") is dropped, as
// RFC 5321 appendix C says receivers should. Surrounding <> are accepted.
// UTF-8 local parts and domains are accepted (RFC 6531); such domains are
// returned in A-label form.
func ParsePath(s string) (Address, error) {
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		s = s[1 : len(s)-1]
	}
	if s == "" {
		return Address{}, nil
	}
	if len(s) > maxPath {
		return Address{}, errors.New("path too long")
	}
	s, err := dropRoute(s)
	if err != nil {
		return Address{}, err
	}
	i := strings.LastIndexByte(s, '@')
	if i < 0 {
		return Address{}, errors.New("no @domain")
	}
	local, domain := s[:i], s[i+1:]
	if err := checkLocal(local); err != nil {
		return Address{}, err
	}
	a := Address{Local: local}
	if strings.HasPrefix(domain, "[") {
		a.Domain, err = parseLiteral(domain)
		a.Literal = true
	} else {
		a.Domain, err = parseDomain(domain)
	}
	if err != nil {
		return Address{}, err
	}
	// The limits hold for the form sent on, quotes and brackets included
	// (RFC 5321 4.5.3.1.1, 4.5.3.1.3): "a b"@x is 5 octets of local part.
	wire := a.String()
	if len(wire)-len(a.Domain)-1 > maxLocal {
		return Address{}, errors.New("local part longer than 64 octets")
	}
	if len(wire)+2 > maxPath {
		return Address{}, errors.New("path longer than 256 octets")
	}
	return a, nil
}

// dropRoute removes an RFC 5321 A-d-l ("@R1,@R2:"), checking its syntax.
func dropRoute(s string) (string, error) {
	if !strings.HasPrefix(s, "@") {
		return s, nil
	}
	route, rest, ok := strings.Cut(s, ":")
	if !ok {
		return "", errors.New("malformed source route")
	}
	for hop := range strings.SplitSeq(route, ",") {
		if !strings.HasPrefix(hop, "@") {
			return "", errors.New("malformed source route")
		}
		if _, err := parseDomain(hop[1:]); err != nil {
			return "", fmt.Errorf("source route: %v", err)
		}
	}
	return rest, nil
}

func checkLocal(l string) error {
	switch {
	case l == "":
		return errors.New("empty local part")
	case l[0] == '@':
		// Only a second source route or a quoted "@..." gives this; neither
		// is a mailbox anyone needs, and it would read back as a route.
		return errors.New("local part starts with @")
	case len(l) > maxLocal:
		return errors.New("local part longer than 64 octets")
	case !utf8.ValidString(l):
		return errors.New("local part is not valid UTF-8")
	}
	// Anything printable could have come quoted; control characters could not.
	for _, r := range l {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return errors.New("control character in local part")
		}
	}
	return nil
}

// isDotString reports RFC 5321 Dot-string: atoms of atext joined by dots.
func isDotString(l string) bool {
	if l == "" || l[0] == '.' || l[len(l)-1] == '.' || strings.Contains(l, "..") {
		return false
	}
	for _, r := range l {
		if r < 0x80 && !isAtext(byte(r)) && r != '.' {
			return false
		}
	}
	return true
}

// isAtext is RFC 5322 3.2.3 atext (ASCII part).
func isAtext(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func parseDomain(d string) (string, error) {
	if d == "" {
		return "", errors.New("empty domain")
	}
	if len(d) > maxDomain {
		return "", errors.New("domain too long")
	}
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 {
			// idna takes a byte that is not UTF-8 for U+FFFD and makes an
			// A-label of it: "\xffvictim.example" would pass as a domain
			// nobody wrote (RFC 6531 3.3: UTF-8 only).
			if !utf8.ValidString(d) {
				return "", errors.New("domain is not UTF-8")
			}
			a, err := idna.Lookup.ToASCII(d)
			if err != nil {
				return "", fmt.Errorf("invalid domain %q", d)
			}
			d = a
			break
		}
	}
	d = strings.ToLower(d)
	if !config.ValidDomain(d) {
		return "", fmt.Errorf("invalid domain %q", d)
	}
	return d, nil
}

// parseLiteral accepts "[a.b.c.d]" and "[IPv6:...]" (RFC 5321 4.1.3).
func parseLiteral(d string) (string, error) {
	if !strings.HasSuffix(d, "]") {
		return "", errors.New("unterminated address literal")
	}
	in := d[1 : len(d)-1]
	if v6, ok := cutPrefixFold(in, "IPv6:"); ok {
		ip, err := netip.ParseAddr(v6)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", fmt.Errorf("invalid IPv6 literal %q", d)
		}
		return "[ipv6:" + ip.String() + "]", nil
	}
	ip, err := netip.ParseAddr(in)
	if err != nil || !ip.Is4() {
		return "", fmt.Errorf("invalid address literal %q", d)
	}
	return "[" + ip.String() + "]", nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}
