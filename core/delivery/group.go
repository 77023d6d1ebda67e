package delivery

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis-mta/portcullis/core/delivery/smtpc"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// outcome is what became of one recipient in one attempt.
type outcome struct {
	reply *smtpc.Reply
	ok    bool   // delivered
	hop   string // host[ip:port], "" if no connection was made
	tls   bool
	dsn   bool // the next hop offered DSN: it reports success itself
	// accepted: the hop took this recipient at RCPT, so a reply that is
	// not a delivery is that of DATA or the final dot.
	accepted bool
}

// group is the recipients of one message that go to one destination.
type group struct {
	key    string
	rt     *route
	domain string
	rcpts  []*queue.Recipient
	size   func() (int64, error) // the message's size (for SIZE), counted once an attempt; nil: not declared
	park   bool                  // may be parked (see parking) rather than wait for a place
	free   func()                // gives back the worker sendGroup took; nil if none
}

// sendGroup delivers g: on a pooled connection if one is idle, else on a
// new one to the first hop that answers. Recipients a hop defers in the
// transaction (4xx to MAIL, RCPT or the dot, or a lost connection) go on to
// the next hop in the same attempt, as Postfix does: the next MX may well
// be up (RFC 5321 5.1). What a hop delivered or refused with a 5xx is final.
func (m *Manager) sendGroup(ctx context.Context, s *settings, env *queue.Envelope, open opener, g *group) []outcome {
	// The route's place first, then a worker: a message waiting for a
	// saturated destination holds no worker (see dispatch).
	release, err := m.lim.acquire(ctx, g.key, g.rt.concurrency, g.park)
	if errors.Is(err, errCrowded) {
		return fill(len(g.rcpts), outcome{reply: errParked})
	}
	if err != nil {
		return fill(len(g.rcpts), outcome{reply: errShutdown})
	}
	defer func() {
		release()
		m.unpark(g.key)
	}()
	free, err := m.worker(ctx)
	if err != nil {
		return fill(len(g.rcpts), outcome{reply: errShutdown})
	}
	g.free = free // given back by deliver: see there
	if m.set.Load() != s {
		// A reload came while it waited: the message is leased again
		// at once, grouped and routed by the new settings.
		return fill(len(g.rcpts), outcome{reply: errRequeued})
	}
	out := make([]outcome, len(g.rcpts))
	left := make([]int, len(g.rcpts)) // indexes of the recipients no hop has settled
	for i := range left {
		left[i] = i
	}
	// A pooled connection may have been closed by the server meanwhile; a
	// transaction that fails on it before any reply is retried on a new one.
	pooled := "" // the address of the pooled session that answered, not tried again
	for c := m.pool.get(g.key); c != nil; c = m.pool.get(g.key) {
		res, stale := m.transact(ctx, s, c, env, open, g.only(left))
		if !stale {
			pooled, left = c.addr, settle(out, left, res)
			break
		}
	}
	if len(left) == 0 {
		return out
	}
	if o, ok := m.dead.get(g.key, m.d.Now()); ok {
		// As the hop that failed said a moment ago, named in the log
		// (relay=) as it was then, and said to be that: nothing was tried
		// now (Postfix: "delivery temporarily suspended: ...").
		return unansweredAs(out, left, suspended(o))
	}
	hops, why := m.hops(ctx, s, g.rt, g.domain)
	if why != nil {
		return unanswered(out, left, why)
	}
	var last outcome // the last hop's failure, with where it happened
	answered := pooled != ""
	for i, h := range hops {
		if h.addr.String() == pooled {
			continue // it has had its say in this attempt
		}
		c, err := m.session(ctx, s, env, g, h)
		if err != nil {
			last = outcome{reply: connReply(h, err)}
			if he := (*hopError)(nil); errors.As(err, &he) {
				last.hop, last.tls = he.hop, he.tls
			}
			if cv := (*tls.CertificateVerificationError)(nil); errors.As(err, &cv) {
				// Only the admin can fix it: say how, at warning level.
				m.log.Warn("delivery: the next hop's TLS certificate does not verify; mail is deferred",
					"queue_id", env.ID, "host", h.host, "addr", h.addr.String(), "err", cv.Err, "fix", certFix(cv.Err))
			}
			if errors.Is(err, errLoopsBack) {
				// Only the admin can fix the route: said here, where the
				// message is known, so that a grep for its ID finds it.
				m.log.Warn("delivery: next hop greets with our own hostname: mail loops back to myself; check the routes",
					"queue_id", env.ID, "host", h.host, "addr", h.addr.String(), "hostname", s.hostname)
			}
			if ae := (*authError)(nil); errors.As(err, &ae) {
				// Loud, once per refused login: only the admin can fix it.
				// Unless the hop said the trouble is its own, with any 4xx
				// but 432 (RFC 4954 6: 454 4.7.0, its password store is
				// down; Exim's "435 Unable to authenticate at present" when
				// its authenticator defers; 421 closing): telling the admin
				// to fix a password that is right would send them astray.
				// 432 4.7.12 asks for a password transition, which is ours.
				msg := "delivery: SMTP AUTH failed at the next hop; mail is deferred until the route's auth.username or password_file is fixed"
				if r := (*smtpc.Reply)(nil); errors.As(err, &r) && !r.Local && r.Code/100 == 4 && r.Code != 432 {
					msg = "delivery: SMTP AUTH failed at the next hop for a temporary reason of its own, not our credentials; mail is deferred"
				}
				m.log.Warn(msg, "queue_id", env.ID, "host", h.host, "addr", h.addr.String(), "user", ae.user, "tls", last.tls, "reply", last.reply.String())
			} else if tryingNext(ctx, hops, i, pooled) {
				// As for a transaction deferred below: the next hop may
				// deliver, and its line alone would hide that this one is
				// down (Postfix logs "connect to X: Connection refused").
				m.log.Info("delivery: next hop failed, trying the next one", "queue_id", env.ID, "host", h.host,
					"addr", h.addr.String(), "reply", last.reply.String())
			} else {
				m.log.Debug("delivery: next hop failed", "queue_id", env.ID, "host", h.host, "addr", h.addr.String(), "reply", last.reply.String())
			}
			if ctx.Err() != nil {
				for _, i := range left {
					out[i] = outcome{reply: errShutdown}
				}
				return out
			}
			continue
		}
		answered = true
		res, _ := m.transact(ctx, s, c, env, open, g.only(left))
		if left = settle(out, left, res); len(left) == 0 {
			return out
		}
		if tryingNext(ctx, hops, i, pooled) {
			m.log.Info("delivery: next hop deferred, trying the next one", "queue_id", env.ID, "host", h.host,
				"addr", h.addr.String(), "deferred", len(left), "reply", out[left[0]].reply.String())
		}
	}
	if !answered && s == m.set.Load() { // a reload since may have fixed it
		// Every hop failed: spare the next messages to this destination the
		// same wait for a while (Postfix marks such a destination dead too).
		m.dead.put(g.key, last, m.d.Now().Add(min(deadFor, s.retry[0])))
	}
	return unansweredAs(out, left, last)
}

// session connects to h for g; on an opportunistic route a failed TLS
// handshake is retried in clear.
func (m *Manager) session(ctx context.Context, s *settings, env *queue.Envelope, g *group, h hop) (*conn, error) {
	c, err := m.connect(ctx, s, g.rt, g.key, h, false)
	var te *tlsError
	if err != nil && errors.As(err, &te) && g.rt.tls == tlsOpportunistic {
		m.log.Warn("delivery: STARTTLS failed, trying again without TLS", "queue_id", env.ID, "host", h.host, "addr", h.addr.String(), "err", err)
		c, err = m.connect(ctx, s, g.rt, g.key, h, true)
	}
	return c, err
}

// only is g narrowed to the recipients at indexes idx.
func (g *group) only(idx []int) *group {
	n := *g
	n.rcpts = make([]*queue.Recipient, len(idx))
	for j, i := range idx {
		n.rcpts[j] = g.rcpts[i]
	}
	return &n
}

// settle records res, the outcomes of the recipients at indexes left, and
// returns the indexes of those another hop may still take.
func settle(out []outcome, left []int, res []outcome) []int {
	var still []int
	for j, i := range left {
		out[i] = res[j]
		if nextHopMayTake(res[j]) {
			still = append(still, i)
		}
	}
	return still
}

// nextHopMayTake reports whether o is a deferral by the hop itself, which
// another hop need not share. Our own troubles (shutdown, an unreadable
// spool file, a failed signature) would follow the message anywhere.
func nextHopMayTake(o outcome) bool {
	return !o.ok && o.reply != nil && o.reply.Temporary() &&
		!cutShort(o.reply) && o.reply != errSpool && o.reply != errSign
}

// unanswered gives r to the recipients at indexes left that no hop has
// answered; one that has keeps its hop's own words.
func unanswered(out []outcome, left []int, r *smtpc.Reply) []outcome {
	return unansweredAs(out, left, outcome{reply: r})
}

// suspended is o, a dead destination's last failure, as the outcome of
// an attempt that was not made.
func suspended(o outcome) outcome {
	if o.reply != nil {
		r := *o.reply
		r.Lines = []string{"delivery temporarily suspended: " + o.reply.Text()}
		r.Local = true
		o.reply = &r
	}
	return o
}

// unansweredAs is unanswered with the whole outcome (the failed hop too).
func unansweredAs(out []outcome, left []int, o outcome) []outcome {
	for _, i := range left {
		if out[i].reply == nil {
			out[i] = o
		}
	}
	return out
}

func fill(n int, o outcome) []outcome {
	out := make([]outcome, n)
	for i := range out {
		out[i] = o
	}
	return out
}

// opener opens the message bytes (from the lease), once per transaction.
type opener func() (io.ReadCloser, error)

// transact runs the transactions for g on c and pools or closes c after.
// retry is true when c failed before the server said anything about this
// message (a stale pooled connection): the caller may try again elsewhere.
//
// A server that takes only so many recipients per transaction answers the
// rest 452 (RFC 5321 4.5.3.1.10: "too many recipients"); the client
// should send those in another transaction. So when a transaction
// delivered to some recipients and others got such a 452, the others go
// at once in the next transaction on the same connection, as long as each
// one delivers to someone (Postfix does the same), instead of waiting
// for the next retry. A hop that then refuses DATA for good (overLimit)
// refused the transaction for its size: all its recipients but those
// refused for good at RCPT go again, at most as many per transaction as
// the hop took.
func (m *Manager) transact(ctx context.Context, s *settings, c *conn, env *queue.Envelope, open opener, g *group) (out []outcome, retry bool) {
	out = make([]outcome, len(g.rcpts))
	pending := make([]int, len(g.rcpts)) // the recipients still to send, as indexes into g.rcpts
	for i := range pending {
		pending[i] = i
	}
	limit := 0 // recipients per transaction, once the hop has shown its limit
	for first := true; ; first = false {
		idx := pending // the recipients of this transaction
		if limit > 0 && len(idx) > limit {
			idx = idx[:limit]
		}
		sub := g
		if !first || len(idx) < len(g.rcpts) {
			sub = g.only(idx)
		}
		res, retry, alive := m.transactOnce(ctx, c, env, open, sub, first)
		if retry {
			return nil, true
		}
		for j, i := range idx {
			out[i] = res[j]
		}
		more := tooMany(res)
		if k, surplus := overLimit(res); k > 0 {
			limit = k
			// All again but those it refused for good at RCPT (550 no
			// such user): that was its verdict on them, not on the size.
			// Until a smaller transaction settles them, those it took wait
			// as the surplus does: its refusal of DATA is not theirs, and
			// would bounce them if this connection ends (or the gateway
			// stops) before they are sent again.
			more = nil
			for j, o := range res {
				if o.accepted {
					out[idx[j]] = res[surplus]
				}
				if o.accepted || !o.reply.Permanent() {
					more = append(more, j)
				}
			}
			m.log.Info("delivery: the next hop refused a transaction with more recipients than it takes; sending them again in smaller ones",
				"queue_id", env.ID, "host", c.host, "addr", c.addr, "limit", k, "rest", len(more),
				"reply", res[slices.IndexFunc(res, func(o outcome) bool { return o.accepted })].reply.String())
		} else if len(more) > 0 {
			m.log.Info("delivery: the next hop took only some recipients in one transaction; sending the rest in another",
				"queue_id", env.ID, "host", c.host, "addr", c.addr, "delivered", len(idx)-len(more), "rest", len(more),
				"reply", res[more[0]].reply.String())
		}
		for j, k := range more {
			more[j] = idx[k]
		}
		pending = append(more, pending[len(idx):]...)
		if len(pending) == 0 || !alive || ctx.Err() != nil {
			if alive {
				m.keep(s, c, g.rt.concurrency)
			}
			return out, false
		}
	}
}

// overLimit is the number of recipients a hop accepted in a transaction
// that it then refused whole, for good, at DATA or the final dot, after
// refusing others as too many (as tooMany reads a refusal): Exim with
// recipients_max_reject answers the surplus "552 too many recipients" and
// DATA "554 Too many recipients". 0 when res is not such a transaction.
// Each transaction the caller sends after it is smaller, so this ends.
// surplus is the index in res of the first recipient refused as too many.
func overLimit(res []outcome) (k, surplus int) {
	surplus = -1
	for j, o := range res {
		switch {
		case o.ok:
			return 0, -1
		case o.accepted:
			if o.reply == nil || o.reply.Code/100 != 5 {
				return 0, -1
			}
			k++
		case surplus < 0 && o.reply != nil && o.reply.Code == 452 && (o.reply.Enhanced == "4.5.3" || k > 0):
			surplus = j
		}
	}
	if surplus < 0 {
		return 0, -1
	}
	return k, surplus
}

// tooMany returns the indexes in res of the recipients refused as "too
// many recipients" by a transaction that delivered to others: a 452 with
// status 4.5.3, or any 452 after an accepted recipient (RFC 5321
// 4.5.3.1.10; a 552 is read as 452, see rcptRefusal). None when nothing
// was delivered: another transaction now would make no progress.
func tooMany(res []outcome) []int {
	var more []int
	delivered := false
	for j, o := range res {
		switch {
		case o.ok:
			delivered = true
		case o.reply != nil && o.reply.Code == 452 && (o.reply.Enhanced == "4.5.3" || delivered):
			more = append(more, j)
		}
	}
	if !delivered {
		return nil
	}
	return more
}

// transactOnce runs one transaction for g on c. alive is true when c may
// take another one (the caller pools it or uses it again), else c is
// closed or closing. retry is as for transact; only the first transaction
// on c in this attempt (mayRetry) can be retried elsewhere.
func (m *Manager) transactOnce(ctx context.Context, c *conn, env *queue.Envelope, open opener, g *group, mayRetry bool) (out []outcome, retry, alive bool) {
	if ctx.Err() != nil {
		// Stopping: none starts now (c, pooled or new, is closed by the
		// caller's pool or when Stop gives up).
		c.c.Close()
		return fill(len(g.rcpts), outcome{reply: errShutdown}), false, false
	}
	c.uses++
	mailParams, rcpts, refuse := params(c.c, env, g.rcpts)
	if refuse == nil {
		mailParams, refuse = sizeParam(c, g.size, mailParams)
	}
	if refuse == nil {
		refuse = utf8Refusal(c.c, env, open)
	}
	if refuse != nil {
		return refusedBy(c, refuse, len(g.rcpts), mayRetry)
	}
	body, err := m.openFor(c, env, open, g.size)
	if err != nil {
		return fill(len(g.rcpts), outcome{reply: errSpool}), false, true
	}
	defer body.Close()
	// Lines over 998 octets are folded before signing, so that the
	// signature covers what is sent (smtpc.FoldLines).
	r := smtpc.FoldLines(body)
	if m.d.Signer != nil {
		signed, err := m.d.Signer.Sign(env, r)
		switch {
		case err != nil && signed != nil:
			// Accepted mail is not held back by our own signer: it goes
			// out unsigned, and the log says why.
			m.log.Warn("delivery: sending the message unsigned", "queue_id", env.ID, "err", err)
		case err != nil:
			m.log.Warn("delivery: DKIM signing failed; the message is deferred", "queue_id", env.ID, "err", err)
			return fill(len(g.rcpts), outcome{reply: errSign}), false, true
		}
		r = signed
	}
	// Stop lets a transaction under way finish (m.aborted, not ctx): the
	// next hop may have the message already.
	stop := context.AfterFunc(m.aborted, func() { c.c.Close() })
	res, err := c.c.Send(policy.WirePath(env.From), mailParams, rcpts, r)
	interrupted := !stop()
	// Nothing, or only a 421 to MAIL, came back on a reused connection: it
	// was stale, and a new one may take the message. The 421 is that of a
	// server that timed us out (RFC 5321 3.8), or of one that takes no more
	// messages on this connection: Exim's smtp_accept_max_per_connection,
	// which answers the pipelined RCPT and DATA 503 and keeps the session
	// open, so no error comes with it.
	stale := (err != nil && res.Mail == nil) || (res.Mail != nil && res.Mail.Code == 421)
	if stale && !interrupted && c.uses > 1 && mayRetry {
		if err != nil {
			c.c.Close()
		} else {
			go c.c.Quit() // the server still listens: end the session in step
		}
		return nil, true, false
	}
	if err != nil {
		c.c.Close()
	} else if interrupted {
		c.c.Close() // shutting down: the AfterFunc closed it already
	} else if closing(res) {
		go c.c.Quit() // RFC 5321 3.8: a 421 announces the close
	} else {
		alive = true
	}
	return outcomes(res, err, interrupted, c), false, alive
}

// refusedBy is the outcome of r, a refusal we make from what c announced
// (its SIZE limit, no DSN, no SMTPUTF8) without sending a command. On a
// reused session (mayRetry, as for transactOnce) an RSET first checks that
// the session still stands: a server that has closed it since may announce
// otherwise on a new one, and the caller tries one (retry). Seen with
// Postfix as the smarthost: restarted with a larger message_size_limit, it
// had closed our pooled session (CLOSE-WAIT here), and every bigger
// message bounced with its old limit, unsent, while the session stayed
// pooled.
func refusedBy(c *conn, r *smtpc.Reply, n int, mayRetry bool) (out []outcome, retry, alive bool) {
	if c.uses > 1 && mayRetry {
		if err := c.c.Reset(); err != nil {
			c.c.Close()
			return nil, true, false
		}
	}
	return fill(n, outcome{reply: r, hop: c.hop(), tls: c.tls}), false, true
}

// closing reports a 421 anywhere in res: the server is closing the
// channel (RFC 5321 3.8), so the session must not be pooled.
func closing(res *smtpc.Result) bool {
	return closingReply(res) != nil || (res.Data != nil && res.Data.Code == 421)
}

// closingReply is the first 421 to MAIL or RCPT in res, nil if none.
func closingReply(res *smtpc.Result) *smtpc.Reply {
	if res.Mail != nil && res.Mail.Code == 421 {
		return res.Mail
	}
	if i := slices.IndexFunc(res.Rcpts, func(r *smtpc.Reply) bool { return r != nil && r.Code == 421 }); i >= 0 {
		return res.Rcpts[i]
	}
	return nil
}

// openFor opens the message for c: as it is, or with its 8-bit body parts
// converted to quoted-printable when c does not offer 8BITMIME (see
// downgrade.go). Whatever BODY the client declared, the bytes decide: a
// client that sent 8-bit without BODY=8BITMIME broke RFC 6152 too. size
// is the message's size (nil: unknown).
func (m *Manager) openFor(c *conn, env *queue.Envelope, open opener, size func() (int64, error)) (io.ReadCloser, error) {
	if ok, _ := c.c.Ext("8BITMIME"); ok {
		return open()
	}
	return m.open7bit(env, c.host, open, size)
}

// open7bit opens the message for host, a next hop without 8BITMIME. The
// conversion needs the whole message at hand (a part's bytes decide its
// new header), so the message is read once into a buffer of its size, and
// the conversion streams from there as the hop takes it.
func (m *Manager) open7bit(env *queue.Envelope, host string, open opener, size func() (int64, error)) (io.ReadCloser, error) {
	if need, err := needs7bit(open); err != nil || !need {
		if err != nil {
			return nil, err
		}
		return open()
	}
	msg, err := readSized(open, size)
	if err != nil {
		return nil, err
	}
	return startDowngrade(msg, func() {
		m.log.Info("delivery: 8-bit body converted to quoted-printable for a next hop without 8BITMIME",
			"queue_id", env.ID, "host", host)
	}), nil
}

// readSized reads the message into a buffer allocated once to its size,
// where io.ReadAll's would double and double again as it grew.
func readSized(open opener, size func() (int64, error)) ([]byte, error) {
	var n int64
	if size != nil {
		var err error
		if n, err = size(); err != nil {
			return nil, err
		}
	}
	body, err := open()
	if err != nil {
		return nil, err
	}
	defer body.Close()
	msg := make([]byte, n)
	k, err := io.ReadFull(body, msg)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return msg[:k], nil // shorter than said
	case err != nil:
		return nil, err
	}
	// Longer than said (or not said): the rest, however it grows.
	rest, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	return append(msg, rest...), nil
}

// tryingNext reports whether a hop after hops[i] is tried in this attempt,
// as the info lines that say so must be true: not once the gateway is
// stopping (the loop ends at the next dial), and not when those left are
// only the pooled session's, which has had its say.
func tryingNext(ctx context.Context, hops []hop, i int, pooled string) bool {
	if ctx.Err() != nil {
		return false
	}
	for _, h := range hops[i+1:] {
		if h.addr.String() != pooled {
			return true
		}
	}
	return false
}

// outcomes reads a transaction's replies per recipient. Only a 250 to the
// final dot delivers; a broken connection before it leaves all pending.
func outcomes(res *smtpc.Result, err error, interrupted bool, c *conn) []outcome {
	out := make([]outcome, len(res.Rcpts))
	closed := closingReply(res)
	for i, rr := range res.Rcpts {
		o := outcome{hop: c.hop(), tls: c.tls, dsn: c.dsn}
		switch {
		case res.Delivered(i):
			o.ok, o.reply = true, res.Data
		case interrupted && res.Data == nil:
			o.reply = errShutdown
		case err != nil && res.Data == nil:
			// The server's own words, when it gave a reason before the
			// connection went: a refused MAIL, this recipient's refusal,
			// or the 421 it closed with (RFC 5321 3.8), as a pipelined
			// MAIL or RCPT can get before the EOF that follows. Postfix:
			// "host said: 421 4.7.0 too fast (in reply to MAIL FROM
			// command)".
			switch {
			case res.Mail != nil && res.Mail.Code != 250:
				o.reply = res.Mail
			case rr != nil && rr.Code/100 != 2:
				o.reply = rcptRefusal(rr)
			case closed != nil:
				o.reply = closed
			case res.DotSent:
				// The hop may have the message: Postfix's "lost connection
				// ... while sending end of data -- message may be sent more
				// than once". Said so in the log and in queue list, as the
				// admin who finds a copy at the recipient will ask.
				o.reply = smtpc.NewReply(451, "4.4.2", "%s: no reply to the final dot (%v): the outcome is unknown: the hop may have the message", c.host, err)
			default:
				o.reply = smtpc.NewReply(451, "4.4.2", "%s: connection lost: %v", c.host, err)
			}
		case res.Mail != nil && res.Mail.Code != 250:
			o.reply = res.Mail
		case rr != nil && rr.Code/100 != 2:
			o.reply = rcptRefusal(rr)
		case res.Data != nil:
			o.reply, o.accepted = res.Data, true
		default:
			o.reply = smtpc.NewReply(451, "4.4.2", "%s: transaction incomplete", c.host)
		}
		out[i] = o
	}
	return out
}

// sizeParam declares the message's size to a next hop that offers SIZE
// (RFC 1870 6) and refuses, before MAIL, a message over the limit it
// announces: the hop would refuse it anyway once the bytes had crossed the
// wire (or drop the connection, making it look temporary), and no retry
// can make it fit. Postfix: "message size N exceeds size limit M of
// server". The size is the spooled message's, as Postfix declares its
// queue file's: an 8-bit downgrade or a signature adds a little.
func sizeParam(c *conn, size func() (int64, error), mp []string) ([]string, *smtpc.Reply) {
	ok, limit := c.c.Size()
	if !ok || size == nil {
		return mp, nil
	}
	n, err := size()
	if err != nil {
		return nil, errSpool
	}
	if limit > 0 && n > limit {
		return nil, smtpc.NewReply(552, "5.3.4", "message size %d exceeds size limit %d of server %s", n, limit, c.hop())
	}
	return append(mp, "SIZE="+strconv.FormatInt(n, 10)), nil
}

// countBytes is the size of the message open returns.
func countBytes(open opener) (int64, error) {
	r, err := open()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return io.Copy(io.Discard, r)
}

// rcptRefusal reads a refused RCPT. RFC 5321 4.5.3.1.10: RFC 821 gave
// "too many recipients" the code 552, now 452, and clients SHOULD treat a
// 552 to RCPT "in this case" as temporary; so such a 552 is taken as the
// 452 it means, and the recipient waits for the next transaction instead
// of bouncing. Only that case: a 552 whose enhanced code says something
// else (5.2.2 mailbox full, 5.1.1 no such user, 5.7.1 policy) is the hop's
// verdict on the recipient and bounces, as Postfix takes it, rather than
// be retried until queue.max_age. One without an enhanced code may be the
// old "too many recipients", and waits.
func rcptRefusal(r *smtpc.Reply) *smtpc.Reply {
	if r.Code != 552 || (r.Enhanced != "" && r.Enhanced != "5.5.3") { // RFC 3463 X.5.3: too many recipients
		return r
	}
	t := *r
	t.Code = 452
	if t.Enhanced != "" {
		t.Enhanced = "4" + t.Enhanced[1:]
	}
	return &t
}

// params builds the MAIL and RCPT parameters the next hop understands: BODY
// (RFC 6152), SMTPUTF8 (RFC 6531) and the DSN ones (RFC 3461 4) when it
// offers DSN. A message that needs SMTPUTF8 cannot go to a hop without it.
func params(c *smtpc.Client, env *queue.Envelope, rs []*queue.Recipient) ([]string, []smtpc.Rcpt, *smtpc.Reply) {
	var mp []string
	if ok, _ := c.Ext("8BITMIME"); ok && env.BodyType == "8BITMIME" {
		mp = append(mp, "BODY=8BITMIME")
	}
	if env.SMTPUTF8 {
		if ok, _ := c.Ext("SMTPUTF8"); ok {
			mp = append(mp, "SMTPUTF8")
		} else if !isASCII(env.From) || slices.ContainsFunc(rs, func(r *queue.Recipient) bool { return !isASCII(r.Addr) }) {
			return nil, nil, errNoUTF8
		}
		// Else it goes without: transact checks the header first.
	}
	dsn, _ := c.Ext("DSN")
	if dsn && env.DSNRet != "" {
		mp = append(mp, "RET="+env.DSNRet)
	}
	if dsn && env.DSNEnvID != "" {
		mp = append(mp, "ENVID="+policy.Xtext(env.DSNEnvID))
	}
	rcpts := make([]smtpc.Rcpt, len(rs))
	for i, r := range rs {
		rcpts[i].Addr = policy.WirePath(r.Addr)
		if !dsn {
			continue
		}
		if len(r.Notify) > 0 {
			rcpts[i].Params = append(rcpts[i].Params, "NOTIFY="+strings.ToUpper(strings.Join(r.Notify, ",")))
		}
		if v, ok := policy.ORCPTParam(r.ORCPT); ok {
			rcpts[i].Params = append(rcpts[i].Params, "ORCPT="+v)
		}
	}
	return mp, rcpts, nil
}

// errNoUTF8 refuses a message that needs SMTPUTF8 for a next hop without it.
// errSpool and errSign are troubles of ours, which no other hop would fix.
var (
	errNoUTF8 = smtpc.NewReply(553, "5.6.7", "next hop does not support SMTPUTF8")
	errSpool  = smtpc.NewReply(451, "4.3.0", "cannot read spooled message")
	errSign   = smtpc.NewReply(451, "4.3.0", "signing failed")
)

// utf8Refusal refuses a message sent with SMTPUTF8 to a next hop without
// it when its header needs it (params checked the envelope).
func utf8Refusal(c *smtpc.Client, env *queue.Envelope, open opener) *smtpc.Reply {
	if ok, _ := c.Ext("SMTPUTF8"); ok || !env.SMTPUTF8 {
		return nil
	}
	needs, err := headerNeedsUTF8(open)
	switch {
	case err != nil:
		return errSpool
	case needs:
		return errNoUTF8
	}
	return nil
}

// headerNeedsUTF8 reports whether the message's header has 8-bit bytes. A
// message sent with SMTPUTF8 whose envelope and header are ASCII does not
// need it (RFC 6531 3.2) and may go to a next hop that lacks it, as
// Postfix sends it; only one that does need it is refused.
func headerNeedsUTF8(open opener) (bool, error) {
	body, err := open()
	if err != nil {
		return false, err
	}
	defer body.Close()
	br := bufio.NewReader(body)
	start := true // at the start of a line
	for {
		line, err := br.ReadSlice('\n')
		if start && (string(line) == "\r\n" || string(line) == "\n") {
			return false, nil // the end of the header
		}
		if !isASCII(string(line)) {
			return true, nil
		}
		start = err == nil
		switch {
		case err == bufio.ErrBufferFull:
		case err == io.EOF:
			return false, nil
		case err != nil:
			return false, err
		}
	}
}

// keep pools c for the next message, unless the config changed since it
// was set up (routes, TLS or credentials may differ now).
func (m *Manager) keep(s *settings, c *conn, limit int) {
	if s != m.set.Load() {
		go c.c.Quit()
		return
	}
	m.pool.put(c, limit, m.d.Now())
}

// certFix is what the admin can do about a next hop's certificate that
// does not verify, by why it does not: adding a CA does nothing for one
// that has expired or names another host.
func certFix(err error) string {
	const unverified = "or set tls_verify: false on the route (encrypted, not authenticated)"
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	switch {
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "it has expired or is not yet valid: its admin must renew it (check this machine's clock too); meanwhile " + unverified
	case errors.As(err, &host):
		return "it does not name the host connected to: point the route's next_hop at a name it has, " + unverified
	}
	return "give its CA with SSL_CERT_FILE, " + unverified
}
