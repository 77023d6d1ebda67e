package policy

import (
	"log/slog"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/smtperr"
)

// Client is what the relay decision knows of the SMTP client.
type Client struct {
	IP            netip.Addr
	Authenticated bool   // SMTP AUTH succeeded in this session
	User          string // the authenticated user, for logs
}

// Policy is the relay decision for one configuration. It is safe for
// concurrent use; build a new one on config reload.
type Policy struct {
	networks []netip.Prefix
	local    Domains     // relay.domains
	rcpts    *recipients // nil: every address in relay.domains is accepted
	// postmaster is Postmaster(cfg), where "RCPT TO:<Postmaster>" goes:
	// accepted from anyone, as RFC 5321 4.5.1 requires, even when it is
	// postmaster@ the hostname, outside relay.domains.
	postmaster string
	log        *slog.Logger
}

// Domains is a relay.domains list as the gateway reads it: exact names,
// and ".suffix" or "*.suffix" for every subdomain of suffix (not suffix
// itself). Delivery's skip_local uses the same reading.
type Domains struct {
	exact    map[string]bool
	suffixes []string // ".example.test" for ".example.test" / "*.example.test" entries
}

// NewDomains reads list (case-insensitive).
func NewDomains(list []string) Domains {
	ds := Domains{exact: map[string]bool{}}
	for _, d := range list {
		d = strings.ToLower(d)
		switch {
		case strings.HasPrefix(d, "*."):
			ds.suffixes = append(ds.suffixes, d[1:])
		case strings.HasPrefix(d, "."):
			ds.suffixes = append(ds.suffixes, d)
		default:
			ds.exact[d] = true
		}
	}
	return ds
}

// Has reports whether domain is in the list: an exact entry, or a
// subdomain of a suffix entry. Case-insensitive; a trailing dot is not
// stripped (it is not a valid address domain).
func (ds Domains) Has(domain string) bool {
	domain = strings.ToLower(domain)
	if ds.exact[domain] {
		return true
	}
	for _, s := range ds.suffixes {
		if strings.HasSuffix(domain, s) && len(domain) > len(s) {
			return true
		}
	}
	return false
}

// New builds the policy of cfg (already validated by config.Load). It reads
// relay.recipients if set; that file is then re-read when it changes.
func New(cfg *config.Config, logger *slog.Logger) (*Policy, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Policy{local: NewDomains(cfg.Relay.Domains), postmaster: Postmaster(cfg), log: logger}
	for _, n := range cfg.Relay.Networks {
		p.networks = append(p.networks, n.Prefix)
	}
	if cfg.Relay.Recipients != "" {
		r, err := loadRecipients(cfg.Relay.Recipients, logger)
		if err != nil {
			return nil, err
		}
		p.rcpts = r
	}
	return p, nil
}

// Trusted reports whether ip is in relay.networks (v4-mapped IPv6 is
// treated as IPv4; a zone, as link-local clients have, is ignored:
// netip.Prefix.Contains never matches a zoned address).
func (p *Policy) Trusted(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	for _, n := range p.networks {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// IsLocal reports whether domain is one of relay.domains: an exact entry,
// or a subdomain of a ".suffix" / "*.suffix" entry. Case-insensitive; a
// trailing dot is not stripped (it is not a valid address domain).
func (p *Policy) IsLocal(domain string) bool { return p.local.Has(domain) }

// trusted reports a client that may relay anywhere.
func (p *Policy) trusted(c Client) bool { return c.Authenticated || p.Trusted(c.IP) }

// CheckMail judges MAIL FROM. from is as go-smtp hands it ("" for <>).
// Any well-formed sender is accepted here: the relay decision is taken per
// recipient, where the sender's null-ness matters.
func (p *Policy) CheckMail(c Client, from string) error {
	if _, err := ParsePath(from); err != nil {
		// RFC 3463: X.1.7 is "bad sender's mailbox address syntax".
		return smtperr.Refuse(err, 553, "5.1.7", echo(from)+": Sender address rejected: bad address syntax")
	}
	return nil
}

// CheckRcpt judges RCPT TO for a transaction with sender from. The rules,
// in order: the recipient must parse strictly (553 5.1.3); a recipient in
// relay.domains is accepted from anyone unless its local part holds
// routing characters (% ! @, or a leading "@...:" route, which a
// downstream server may honour and so relay: 553 5.1.3) or
// relay.recipients does not list it (550 5.1.1); any
// other recipient, an address literal included, only from a trusted or
// authenticated client (554 5.7.1 Relay access denied), but for the
// gateway's own postmaster (Postmaster). The null sender
// thus reaches only relay.domains unless the client is trusted.
func (p *Policy) CheckRcpt(c Client, from, rcpt string) error {
	a, err := ParsePath(rcpt)
	if err == nil && a.IsNull() {
		err = errNullRcpt
	}
	if err != nil {
		return smtperr.Refuse(err, 553, "5.1.3", echo(rcpt)+": Recipient address rejected: bad address syntax")
	}
	if !a.Literal && p.IsLocal(a.Domain) {
		return p.checkLocalRcpt(a, strings.HasPrefix(strings.TrimPrefix(rcpt, "<"), "@"), rcpt)
	}
	if p.trusted(c) || (!a.Literal && strings.EqualFold(a.Local+"@"+a.Domain, p.postmaster)) {
		return nil
	}
	return smtperr.New(554, "5.7.1", echo(rcpt)+": Relay access denied")
}

// checkLocalRcpt judges a recipient in relay.domains. routed: rcpt starts
// with "@". go-smtp has already dropped a real source route, so that is a
// quoted local part (`"@victim:u"@ours`) which ParsePath read as a route:
// the address judged (u@ours) is not the one the queue would hand on, as a
// source route, to the next hop.
func (p *Policy) checkLocalRcpt(a Address, routed bool, rcpt string) error {
	if routed || strings.ContainsAny(a.Local, "%!@") {
		return smtperr.New(553, "5.1.3", echo(rcpt)+": Recipient address rejected: routing characters in local part")
	}
	// RFC 5321 4.5.1: postmaster at every domain we take mail for MUST be
	// accepted, listed or not (the mail is routed like any other).
	if p.rcpts != nil && !strings.EqualFold(a.Local, "postmaster") && !p.rcpts.Has(a) {
		return smtperr.New(550, "5.1.1", echo(rcpt)+": Recipient address rejected: User unknown")
	}
	return nil
}

// echo is a client's address as a refusal names it, in angle brackets, as
// Postfix's "<addr>: Recipient address rejected", in its envelope form
// (WirePath: "john smith"@x keeps its quotes; go-smtp hands it unquoted). The address is the
// client's bytes and may be refused for being malformed, so the reply
// shows it safe: a character that is not printable as '?' (RFC 5321 4.2:
// reply text is HT, SP and printable ASCII; UTF-8 only reaches here in an
// SMTPUTF8 transaction, RFC 6531 3.7.4.2), so that no terminal escape or
// CR reaches the client or a log; and at most maxPath octets of it,
// followed by "...", so that the reply keeps its meaning within the 512
// octets of a reply line (RFC 5321 4.5.3.1.5) instead of being cut at the
// end.
func echo(addr string) string {
	const more = "..."
	addr = WirePath(addr)
	cut := len(addr) > maxPath
	if cut {
		n := maxPath
		for n > 0 && !utf8.RuneStart(addr[n]) {
			n--
		}
		addr = addr[:n]
	}
	safe := strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsGraphic(r) {
			return '?'
		}
		return r
	}, addr)
	if cut {
		safe += more
	}
	return "<" + safe + ">"
}

type policyError string

func (e policyError) Error() string { return string(e) }

const errNullRcpt = policyError("the null path is not a recipient")

// Postmaster is where "RCPT TO:<Postmaster>" goes, which RFC 5321 (4.1.1.3,
// 4.5.1) says must be accepted without a domain: postmaster@ the first
// relay domain that is not a wildcard (mail for it is routed to the
// servers behind the gateway), else postmaster@ the hostname.
func Postmaster(cfg *config.Config) string {
	for _, d := range cfg.Relay.Domains {
		if !strings.HasPrefix(d, "*") && !strings.HasPrefix(d, ".") {
			return "postmaster@" + d
		}
	}
	return "postmaster@" + cfg.Hostname
}
