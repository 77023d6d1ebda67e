package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/emersion/go-sasl"

	"github.com/portcullis-mta/portcullis/core/delivery/smtpc"
	"github.com/portcullis-mta/portcullis/core/dnsresolve"
)

// maxHops bounds the addresses one attempt tries, as Postfix's
// smtp_mx_address_limit (5) does: a destination with many MX hosts or
// addresses that all defer holds a worker for a few sessions, not dozens.
const maxHops = 5

// maxMXNames bounds the MX hosts whose addresses one attempt looks up, in
// preference order. maxHops alone stops only once it has addresses: hosts
// whose lookups time out were all asked one after another, so a domain with
// 40 dead MX hosts held a worker for 40 DNS timeouts per server, and one
// with thousands (a large TCP answer) for hours. Ten is twice maxHops: room
// for a few stale hosts ahead of working ones, at most 10 times
// dns.timeout per server. RFC 5321 5.1 lets a client limit the alternate
// addresses it tries; hosts of equal preference come shuffled, so the next
// attempt may pick others.
const maxMXNames = 2 * maxHops

// hop is one address to try for a destination.
type hop struct {
	host string
	addr netip.AddrPort
}

// hops lists the addresses for domain via rt in the order to try them:
// the route's host, or the MX hosts by preference (RFC 5321 5.1), or the
// domain itself when it has no MX; at most maxHops of them, from at most
// maxMXNames hosts. The reply says why there are none.
func (m *Manager) hops(ctx context.Context, s *settings, rt *route, domain string) ([]hop, *smtpc.Reply) {
	names, port := []string{rt.host}, uint16(25)
	fromMX := false // names are the domain's MX hosts
	if !rt.mx {
		p, _ := strconv.ParseUint(rt.port, 10, 16)
		port = uint16(p)
	} else if lit, ok := addressLiteral(domain); ok {
		names = []string{lit} // RFC 5321 4.1.3: deliver to the address itself, no MX
	} else {
		mxs, err := s.resolver.LookupMX(ctx, domain)
		if err != nil {
			return nil, dnsReply(domain, err)
		}
		// RFC 5321 5.1: if we are an MX, we and every host of our
		// preference or a worse one are out. The resolver shuffles hosts
		// of equal preference, so one may come before us: find our
		// preference first.
		ours := -1
		for _, mx := range mxs {
			if strings.EqualFold(mx.Host, s.hostname) {
				ours = int(mx.Pref)
				break
			}
		}
		names = names[:0]
		for _, mx := range mxs {
			if ours >= 0 && int(mx.Pref) >= ours {
				continue
			}
			names = append(names, mx.Host)
		}
		if len(names) == 0 && len(mxs) > 0 {
			return nil, smtpc.NewReply(554, "5.4.6", "mail for %s loops back to myself", domain)
		}
		fromMX = len(names) > 0
		if len(names) == 0 {
			names = []string{domain} // RFC 5321 5.1: the implicit MX
		}
	}
	var out []hop
	// The failure reported when no host has an address: a temporary one
	// if any host's lookup failed so (a later try may find it), else the
	// first host's. Otherwise a stale MX host that does not exist would
	// bounce mail whose working MX only had a DNS hiccup.
	failName, failErr := names[0], error(nil)
	looked := 0
	for _, n := range names {
		if len(out) >= maxHops || looked == maxMXNames {
			break // no need to look up hosts that will not be tried
		}
		looked++
		addrs, err := s.resolver.LookupIP(ctx, n)
		if err != nil {
			if failErr == nil || (dnsresolve.IsTemporary(err) && !dnsresolve.IsTemporary(failErr)) {
				failName, failErr = n, err
			}
			continue
		}
		for _, a := range addrs {
			out = append(out, hop{host: n, addr: netip.AddrPortFrom(a, port)})
		}
	}
	if len(out) > maxHops {
		out = out[:maxHops]
	}
	if len(out) == 0 {
		r := dnsReply(failName, failErr)
		if fromMX && r.Enhanced == "5.1.2" {
			// The domain exists and names its MX hosts, but they do not:
			// its mail cannot be routed (RFC 3463 X.4.4, as Postfix),
			// rather than an address whose domain does not exist (X.1.2).
			r = smtpc.NewReply(550, "5.4.4", "%s: MX host %s not found", domain, failName)
		}
		if !rt.mx && r.Permanent() {
			// A configured next hop that does not resolve is our mistake
			// (or its DNS's), not the recipient's: keep the mail.
			r = smtpc.NewReply(451, "4.4.4", "next hop %s does not resolve: %s", rt.host, r.Text())
		}
		if rest := len(names) - looked; rest > 0 && r.Permanent() {
			// Our own limit left hosts unasked that may have an address:
			// not a reason to bounce.
			r = smtpc.NewReply(451, "4.4.4", "%s: none of the first %d MX hosts has an address (%d more not looked up): %s", domain, looked, rest, r.Text())
		}
		return nil, r
	}
	return out, nil
}

// dnsReply turns a lookup failure into the reply logged and put in DSNs.
func dnsReply(name string, err error) *smtpc.Reply {
	var e *dnsresolve.Error
	switch {
	case errors.As(err, &e) && e.NullMX:
		return smtpc.NewReply(556, "5.1.10", "%s does not accept mail (null MX)", name) // RFC 7505 3.2
	case errors.As(err, &e) && e.NotFound:
		return smtpc.NewReply(550, "5.1.2", "%s: host or domain not found", name)
	case err == nil:
		return smtpc.NewReply(550, "5.4.4", "%s: no address to deliver to", name)
	}
	return smtpc.NewReply(451, "4.4.3", "%s: DNS lookup failed, will retry", name)
}

// errNoTLS and errClearAuth are refusals of our own, made before sending
// anything that must not go out in clear.
var (
	errNoTLS     = smtpc.NewReply(451, "4.7.10", "TLS required by route but not offered by next hop")
	errClearAuth = smtpc.NewReply(451, "4.7.10", "AUTH refused: credentials are never sent without TLS (auth.allow_plaintext off)")
	errShutdown  = smtpc.NewReply(451, "4.3.2", "delivery interrupted by shutdown")
	errRequeued  = smtpc.NewReply(451, "4.3.2", "requeued: the routes changed while it waited")
	errLoopsBack = smtpc.NewReply(451, "4.4.6", "mail loops back to myself: the next hop greets with our hostname")
)

// connect opens a session with h: greeting, EHLO, TLS as the route says,
// and AUTH when the route has credentials.
// plain skips STARTTLS on an opportunistic route: the retry after a failed
// handshake, as Postfix does, since any mail beats none there (RFC 7435).
func (m *Manager) connect(ctx context.Context, s *settings, rt *route, key string, h hop, plain bool) (*conn, error) {
	cn := &conn{key: key, host: h.host, addr: h.addr.String(), plain: plain}
	nc, err := m.d.Dial(ctx, "tcp", h.addr.String())
	if err != nil {
		return nil, &hopError{hop: cn.hop(), err: err}
	}
	c := smtpc.New(nc, m.d.Timeout)
	cn.c = c
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := m.handshake(ctx, s, rt, cn); err != nil {
		_, tlsOn := c.TLS()
		if inStep(err) {
			c.Quit()
		} else {
			c.Close()
		}
		return nil, &hopError{hop: cn.hop(), tls: tlsOn, err: err}
	}
	return cn, nil
}

// hopError is a session that failed before any transaction (connect,
// greeting, EHLO, TLS, AUTH), with the hop it was and whether TLS was up
// by then: the delivery line says so, as for a refusal in a transaction.
// An AUTH refused after STARTTLS must not read as a password sent in clear.
type hopError struct {
	hop string
	tls bool
	err error
}

func (e *hopError) Error() string { return e.err.Error() }
func (e *hopError) Unwrap() error { return e.err }

func (m *Manager) handshake(ctx context.Context, s *settings, rt *route, cn *conn) error {
	c := cn.c
	if rt.tls == tlsImplicit {
		if err := c.WrapTLS(ctx, m.tlsConfig(rt, cn.host)); err != nil {
			return &tlsError{err: err, implicit: true}
		}
	}
	if err := c.Greet(); err != nil {
		return during("receiving the greeting", err)
	}
	if err := c.Hello(s.hostname); err != nil {
		return during("sending EHLO", err)
	}
	if greeting, hello := c.ServerNames(); sameHost(greeting, s.hostname) || sameHost(hello, s.hostname) {
		// Postfix's "mail for X loops back to myself". Deferred, not
		// bounced: a route fixed and a queue flush deliver it, and a
		// real loop makes no copy. The caller warns, naming the message.
		return errLoopsBack
	}
	if (rt.tls == tlsOpportunistic && !cn.plain) || rt.tls == tlsRequired {
		if ok, _ := c.Ext("STARTTLS"); ok {
			if err := c.StartTLS(ctx, m.tlsConfig(rt, cn.host)); err != nil {
				return &tlsError{err: err}
			}
		} else if rt.tls == tlsRequired {
			return errNoTLS
		}
	}
	_, cn.tls = c.TLS()
	cn.dsn, _ = c.Ext("DSN")
	if rt.auth == nil {
		return nil
	}
	a, err := chooseAuth(rt.auth, c.AuthMechs(), cn.tls)
	if err != nil {
		return err
	}
	if err := c.Auth(a); err != nil {
		return &authError{user: rt.auth.user, err: err}
	}
	return nil
}

// stepError is a session's set-up failing on its own (a timeout, a
// closed or garbled connection) rather than by a reply, with the step it
// was in: "connection timed out" alone reads as a hop that cannot be
// reached, when it answered the connect and then never greeted. Postfix:
// "conversation with X timed out while receiving the initial server
// greeting".
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.err.Error() + " while " + e.step }
func (e *stepError) Unwrap() error { return e.err }

// during names the step err happened in, unless it is the server's reply.
func during(step string, err error) error {
	if _, ok := err.(*smtpc.Reply); ok {
		return err
	}
	return &stepError{step: step, err: err}
}

// inStep reports a set-up that ended on a reply the server gave (a 554
// greeting, EHLO or AUTH refused) or on a decision of ours after one (no
// STARTTLS offered, no AUTH mechanism we may use, the hop greets with our
// name): the conversation is still in step, so it ends with QUIT, as a
// server that refuses in its greeting must wait for (RFC 5321 3.1), rather
// than with a hang-up. After a timeout, a broken read, a failed TLS
// handshake or a broken AUTH exchange the connection is only closed; a
// TLS or AUTH step the server answered with a reply (STARTTLS refused
// with 454, EHLO refused inside TLS, 535) is still in step.
func inStep(err error) bool {
	var se *stepError
	if errors.As(err, &se) {
		return false
	}
	te, ae := (*tlsError)(nil), (*authError)(nil)
	if errors.As(err, &te) || errors.As(err, &ae) {
		r := (*smtpc.Reply)(nil)
		return errors.As(err, &r) && !r.Local
	}
	return true // a server's reply, or a refusal of ours (errNoTLS, ...)
}

// sameHost reports whether a name a server gave is host (no trailing dot,
// any case).
func sameHost(name, host string) bool {
	return name != "" && strings.EqualFold(strings.TrimSuffix(name, "."), host)
}

// authError is a failed SMTP AUTH: a refusal (535 for a bad password, 454
// for a server in trouble) or a broken exchange.
type authError struct {
	user string
	err  error
}

func (e *authError) Error() string { return "AUTH as " + e.user + ": " + e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// chooseAuth picks a mechanism the server offers (RFC 4954). Over TLS PLAIN
// is preferred (simplest, and the channel protects it), then LOGIN, then
// CRAM-MD5. In clear only CRAM-MD5 keeps the password off the wire, and even
// it is used only when the route allows plaintext AUTH.
func chooseAuth(a *routeAuth, offered []string, tlsOn bool) (sasl.Client, error) {
	order := []string{"PLAIN", "LOGIN", "CRAM-MD5"}
	if !tlsOn {
		if !a.allowPlain {
			return nil, errClearAuth
		}
		order = []string{"CRAM-MD5", "PLAIN", "LOGIN"}
	}
	for _, mech := range order {
		if !slices.Contains(offered, mech) {
			continue
		}
		switch mech {
		case "PLAIN":
			return sasl.NewPlainClient("", a.user, a.pass), nil
		case "LOGIN":
			return smtpc.LoginClient(a.user, a.pass), nil
		default:
			return smtpc.CramMD5Client(a.user, a.pass), nil
		}
	}
	return nil, noAuthMech(offered)
}

// noAuthMech refuses a hop that offers no mechanism we know, saying what
// it does offer: only the admin can act on it (another port, TLS first, a
// route without auth), and not without knowing what the hop asks for. It
// is 4.7.0: X.7.12 would be "a password transition is needed" (RFC 4954 6).
func noAuthMech(offered []string) *smtpc.Reply {
	if len(offered) == 0 {
		return smtpc.NewReply(451, "4.7.0", "AUTH required by route but next hop offers no AUTH")
	}
	return smtpc.NewReply(451, "4.7.0", "AUTH required by route but next hop offers only %s (we have PLAIN, LOGIN and CRAM-MD5)",
		strings.Join(offered, " "))
}

// tlsConfig is the base config for host with the route's verification.
func (m *Manager) tlsConfig(rt *route, host string) *tls.Config {
	var cfg *tls.Config
	if m.d.TLSConfig != nil {
		cfg = m.d.TLSConfig(host)
	}
	if cfg == nil {
		cfg = &tls.Config{}
	} else {
		cfg = cfg.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	cfg.InsecureSkipVerify = !rt.verify
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

// connReply turns a failure to set up a session into a temporary reply.
func connReply(h hop, err error) *smtpc.Reply {
	var r *smtpc.Reply
	var ae *authError
	if errors.As(err, &ae) && errors.As(err, &r) {
		// RFC 4954 6 and Postfix's smtp_sasl_auth_soft_bounce (yes by
		// default): even a 535 says our credentials are wrong, not that the
		// recipients are; the mail waits for the admin to fix them.
		code, enh := r.Code, "4.7.0"
		if code/100 != 4 {
			code = 451
		}
		if r.Enhanced != "" {
			enh = "4" + r.Enhanced[1:]
		}
		return smtpc.NewReply(code, enh, "SASL authentication failed; server %s said: %s", h.host, r)
	}
	if errors.As(err, &r) {
		if r.Code/100 == 5 {
			// A refusal before any transaction (greeting, EHLO, AUTH): the
			// next host, or a later attempt, may do better.
			return smtpc.NewReply(451, "4.4.0", "%s said: %s", h.host, r)
		}
		return r
	}
	var ne net.Error
	var se *stepError
	var rhe tls.RecordHeaderError
	var te *tlsError
	if errors.As(err, &te) && te.implicit && errors.As(err, &rhe) && smtpGreeting(rhe.RecordHeader[:]) {
		// A route with tls: implicit at a port that speaks SMTP first
		// (25, 587): the TLS handshake read a greeting.
		return smtpc.NewReply(451, "4.4.1", "%s: TLS handshake failed: the hop greets in plain SMTP (%q...), so it wants STARTTLS: set tls: required, not implicit", h.host, rhe.RecordHeader[:])
	}
	var he *hopError
	tlsUp := errors.As(err, &he) && he.tls
	switch timeout := errors.As(err, &ne) && ne.Timeout(); {
	case timeout && errors.As(err, &se) && se.step == "receiving the greeting" && h.addr.Port() == 465 && !tlsUp:
		// The other mix-up: port 465 (submissions, RFC 8314) waits for
		// our TLS handshake while we wait for its greeting. Not when the
		// handshake was made (tls: implicit): then it is just silent.
		return smtpc.NewReply(451, "4.4.2", "%s: conversation timed out while %s: port 465 expects TLS first: set tls: implicit", h.host, se.step)
	case errors.As(err, &se) && se.step == "receiving the greeting" && h.addr.Port() == 465 && !tlsUp &&
		(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		// The same mix-up at a server that stops waiting for our
		// handshake first (Postfix's smtpd_starttls_timeout under load).
		return smtpc.NewReply(451, "4.4.1", "%s: %v: port 465 expects TLS first: set tls: implicit", h.host, err)
	case timeout && errors.As(err, &se):
		return smtpc.NewReply(451, "4.4.2", "%s: conversation timed out while %s", h.host, se.step)
	case timeout:
		return smtpc.NewReply(451, "4.4.2", "%s: connection timed out", h.host)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		// Postfix's words, without Go's "dial tcp ADDR: connect:": they go
		// into DSNs and the queue listing as they are.
		cause := oe.Err
		var se *os.SyscallError
		if errors.As(cause, &se) {
			cause = se.Err
		}
		return smtpc.NewReply(451, "4.4.1", "connect to %s[%s]:%d: %v", h.host, h.addr.Addr(), h.addr.Port(), cause)
	}
	return smtpc.NewReply(451, "4.4.1", "%s: %v", h.host, err)
}

// smtpGreeting reports whether b, the first bytes of a TLS record, are an
// SMTP greeting's reply code instead ("220 ", "421-", "554 ").
func smtpGreeting(b []byte) bool {
	return len(b) >= 4 && b[0] >= '2' && b[0] <= '5' && b[1] >= '0' && b[1] <= '9' && b[2] >= '0' && b[2] <= '9' && (b[3] == ' ' || b[3] == '-')
}

// tlsError is a failed STARTTLS or TLS handshake.
type tlsError struct {
	err      error
	implicit bool // the handshake at connect of a tls: implicit route, before any greeting
}

func (e *tlsError) Error() string { return "TLS: " + e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

// addressLiteral returns the address in a domain like "[192.0.2.1]" or
// "[IPv6:2001:db8::1]" (RFC 5321 4.1.3).
func addressLiteral(domain string) (string, bool) {
	if !strings.HasPrefix(domain, "[") || !strings.HasSuffix(domain, "]") {
		return "", false
	}
	lit := domain[1 : len(domain)-1]
	if len(lit) > 5 && strings.EqualFold(lit[:5], "IPv6:") {
		lit = lit[5:]
	}
	a, err := netip.ParseAddr(lit)
	if err != nil {
		return "", false
	}
	return a.String(), true
}
