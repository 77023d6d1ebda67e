package delivery

import (
	"context"
	"errors"
	"fmt"

	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/verify"
)

var _ verify.Prober = (*Manager)(nil)

// VerifyTarget returns the route of rcpt when rcpt is in relay.domains and
// that route has verify_recipients on (core/verify asks only then). An
// address that is not ASCII is not probed: the server behind may not
// speak SMTPUTF8, and delivery has its own answer for that.
func (m *Manager) VerifyTarget(rcpt string) (verify.Target, bool) {
	s := m.set.Load()
	domain := domainOf(rcpt)
	if domain == "" || !s.local.Has(domain) || !isASCII(rcpt) {
		return verify.Target{}, false
	}
	rt := pick(s.routes, s.local, domain)
	if !rt.verifyRcpts || rt.mx {
		return verify.Target{}, false
	}
	return verify.Target{Hop: rt.hopName, Route: rt.idx, Limit: rt.concurrency, TempAccept: rt.tempAccept}, true
}

// Probe asks rcpt's next hop whether it takes rcpt: a session set up as a
// delivery's is (the route's TLS policy and verification, AUTH, the loop
// check), then MAIL FROM:<>, RCPT TO, RSET and QUIT; never DATA. The
// addresses of a host name are tried in turn until one answers the RCPT,
// all within ctx.
func (m *Manager) Probe(ctx context.Context, rcpt string) verify.Answer {
	s := m.set.Load()
	domain := domainOf(rcpt)
	rt := pick(s.routes, s.local, domain)
	hops, r := m.hops(ctx, s, rt, domain)
	if r != nil {
		return verify.Answer{Err: r}
	}
	var last verify.Answer
	for _, h := range hops {
		last = m.probeHop(ctx, s, rt, h, rcpt)
		if last.Rcpt != nil || last.Mail != nil || ctx.Err() != nil {
			break
		}
	}
	return last
}

// probeHop is Probe at one address; on an opportunistic route a failed
// TLS handshake is tried again in clear, as delivery does.
func (m *Manager) probeHop(ctx context.Context, s *settings, rt *route, h hop, rcpt string) verify.Answer {
	a := verify.Answer{Host: fmt.Sprintf("%s[%s]:%d", h.host, h.addr.Addr(), h.addr.Port())}
	key := "verify " + rt.hopName
	cn, err := m.connect(ctx, s, rt, key, h, false)
	var te *tlsError
	if err != nil && errors.As(err, &te) && rt.tls == tlsOpportunistic {
		cn, err = m.connect(ctx, s, rt, key, h, true)
	}
	if err != nil {
		a.Err = m.probeErr(ctx, h, err)
		return a
	}
	stop := context.AfterFunc(ctx, func() { cn.c.Close() })
	defer stop()
	// The session's own address form, as delivery sends it.
	reply, mailRefused, err := cn.c.Verify(policy.WirePath(rcpt))
	if err != nil {
		cn.c.Close()
		a.Err = m.probeErr(ctx, h, &stepError{step: "verifying the recipient", err: err})
		return a
	}
	cn.c.Quit()
	if mailRefused {
		a.Mail = reply
	} else {
		a.Rcpt = reply
	}
	return a
}

// probeErr is err as the log shows it: a cut short by ctx reads as the
// timeout it was, not as a closed connection.
func (m *Manager) probeErr(ctx context.Context, h hop, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s[%s]:%d: probe timed out (%w)", h.host, h.addr.Addr(), h.addr.Port(), ctx.Err())
	}
	return connReply(h, err)
}
