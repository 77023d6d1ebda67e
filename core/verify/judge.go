package verify

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/core/delivery/smtpc"
	"github.com/portcullis-mta/portcullis/core/metrics"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/smtperr"
)

// The outcomes, as logged (result=) and counted (metrics label).
const (
	Deliverable   = "deliverable"   // the server took the address: accepted
	Undeliverable = "undeliverable" // it refused it for good: 550 5.1.1
	Unverified    = "unverified"    // no answer either way: 450 4.1.1, or accepted by verify_tempfail
)

// maxText bounds the server's words in our reply: the whole must fit a
// 512-octet reply line (RFC 5321 4.5.3.1.5) with the address before it.
const maxText = 200

// errGone is a probe the session stopped waiting for.
var errGone = errors.New("the session stopped waiting for the probe")

// errPending is a probe that had not answered when the session's wait
// (Options.Timeout) ended; it goes on, and a definite answer is cached.
var errPending = errors.New("no answer yet; the probe goes on and its answer will be cached for the next try")

// Verify judges rcpt (as go-smtp hands it, its domain in A-label form)
// at RCPT: nil to accept, or the *smtperr.Error to reply. Only a
// recipient in relay.domains whose route has verify_recipients on is
// looked at, and never postmaster (RFC 5321 4.5.1: it must be accepted).
// log carries the session's context (session=, queue_id=).
func (v *Verifier) Verify(ctx context.Context, log *slog.Logger, rcpt string) error {
	at := strings.LastIndexByte(rcpt, '@')
	if at < 0 || strings.EqualFold(rcpt[:at], "postmaster") {
		return nil
	}
	t, ok := v.o.Prober.VerifyTarget(rcpt)
	if !ok {
		return nil
	}
	k := key(t.Hop, rcpt)
	now := v.o.Now()
	if e := v.cache.get(k, now); e != nil {
		if now.Sub(e.at) >= e.refresh() {
			v.start(t, k, rcpt) // the old answer stands meanwhile
		}
		a := Answer{Host: e.host, Rcpt: e.reply}
		return v.judge(log, t, rcpt, a, true)
	}
	f := v.start(t, k, rcpt)
	wait := time.NewTimer(v.o.Timeout)
	defer wait.Stop()
	select {
	case <-f.done:
		return v.judge(log, t, rcpt, f.a, false)
	case <-ctx.Done():
		return v.judge(log, t, rcpt, Answer{Err: errGone}, false)
	case <-wait.C:
		return v.judge(log, t, rcpt, Answer{Err: errPending}, false)
	}
}

// judge turns an answer into the RCPT's fate, and logs and counts it.
func (v *Verifier) judge(log *slog.Logger, t Target, rcpt string, a Answer, cached bool) error {
	shown := policy.WirePath(rcpt)
	attrs := []any{"rcpt", shown, "route", t.Route, "next_hop", t.Hop, "host", a.Host, "cached", cached}
	switch {
	case a.Mail == nil && a.Rcpt != nil && a.Rcpt.Code/100 == 2:
		log.Info("verify", append(attrs, "result", Deliverable, "reply", a.Rcpt.String())...)
		metrics.Active().Verification(Deliverable, cached)
		return nil
	case a.Mail == nil && refusesMailbox(a.Rcpt):
		log.Info("verify", append(attrs, "result", Undeliverable, "reply", a.Rcpt.String())...)
		metrics.Active().Verification(Undeliverable, cached)
		return smtperr.Refuse(a.Rcpt, 550, "5.1.1",
			angle(shown)+": Recipient address rejected: undeliverable address: the mailbox server said: "+clean(a.Rcpt.String()))
	}
	metrics.Active().Verification(Unverified, cached)
	var why error
	text := "the mailbox server could not be asked; try again later"
	switch {
	case a.Mail != nil:
		// A server that refuses the null sender refuses DSNs too (RFC
		// 5321 4.5.5); it says nothing of the recipient.
		why = a.Mail
		attrs = append(attrs, "reply", a.Mail.String())
		if a.Mail.Permanent() {
			// Not always the null sender itself: a server that wants
			// STARTTLS first says 530 to any MAIL.
			attrs = append(attrs, "problem", "the server refused MAIL FROM:<>: its reply says why (a server must take the null sender, RFC 5321 4.5.5)")
		}
	case a.Rcpt != nil:
		why = a.Rcpt
		text = "the mailbox server said: " + clean(a.Rcpt.String())
		attrs = append(attrs, "reply", a.Rcpt.String())
		if a.Rcpt.Permanent() {
			attrs = append(attrs, "problem", "the server refuses the probe by policy (X.7), not the mailbox: does it take mail for the domain from this gateway (its mynetworks, relay or virtual domains), and MAIL FROM:<>?")
		}
	default:
		why = a.Err
		attrs = append(attrs, "err", errText(a.Err))
	}
	if t.TempAccept {
		log.Warn("verify", append(attrs, "result", Unverified, "action", "accepted (verify_tempfail: accept)")...)
		return nil
	}
	log.Warn("verify", append(attrs, "result", Unverified, "action", "deferred")...)
	return smtperr.Refuse(why, 450, "4.1.1", angle(shown)+": Recipient address rejected: unverified address: "+text)
}

// refusesMailbox reports whether r refuses the address itself: a 5xx
// that is not of class X.7 (RFC 3463 "Security or Policy Status": relay
// access denied, a client or sender restriction, such as the null sender
// refused by a Postfix whose smtpd_delay_reject reports it at RCPT).
// Those refuse this gateway or its probe, whatever the address; taken as
// undeliverable and cached, they would refuse every address with 550 for
// days after the server was put right. A 5xx without an enhanced code
// (Exim's "550 Unrouteable address") is the mailbox's.
func refusesMailbox(r *smtpc.Reply) bool {
	return r != nil && r.Permanent() && !strings.HasPrefix(r.Enhanced, "5.7.")
}

func errText(err error) string {
	if err == nil {
		return "no answer"
	}
	return err.Error()
}

// angle is the address as a refusal names it, as policy's refusals do.
func angle(addr string) string { return "<" + clean(addr) + ">" }

// clean makes the server's words (or an address) safe in our reply: one
// line of printable ASCII, at most maxText octets. smtpc has already
// joined a multi-line reply with "; " and removed control bytes.
func clean(s string) string {
	cut := len(s) > maxText
	if cut {
		s = s[:maxText]
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
	if cut {
		s += "..."
	}
	return s
}
