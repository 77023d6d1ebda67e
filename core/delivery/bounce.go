package delivery

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/metrics"
	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// mayBounce applies queue.bounce: "local" notifies only senders we know
// (authenticated, or from relay.networks), so that mail with a forged
// outside sender does not make us a backscatter source; "all" and "none"
// say what they mean. A DSN never gets a DSN, and <> gets none
// (RFC 3464 4, RFC 5321 4.5.5).
func mayBounce(policy string, env *queue.Envelope) bool {
	if env.IsDSN || env.From == "" {
		return false
	}
	switch policy {
	case "all":
		return true
	case "none":
		return false
	}
	return env.Client.Trusted || env.Client.Authenticated
}

// NoDSNReason says why queue.bounce (policy) and the envelope allow env no
// DSN, or "" when they allow one; the log and `queue bounce` say it.
func NoDSNReason(policy string, env *queue.Envelope) string {
	switch {
	case mayBounce(policy, env):
		return ""
	case env.From == "" || env.IsDSN:
		return "the sender is <>, and a DSN never gets a DSN"
	case policy == "none":
		return "queue.bounce is none"
	}
	return "queue.bounce is local and the sender was neither trusted nor authenticated (no backscatter)"
}

// wants applies the recipient's NOTIFY (RFC 3461 4.1): NEVER, or a list; no
// NOTIFY means failures and delays are reported.
func wants(r *queue.Recipient, what string) bool {
	if len(r.Notify) == 0 {
		return what == "FAILURE" || what == "DELAY"
	}
	return slices.ContainsFunc(r.Notify, func(n string) bool { return strings.EqualFold(n, what) })
}

// notify queues the DSNs this attempt owes: a "relayed" report for
// NOTIFY=SUCCESS recipients handed to a next hop without DSN (one with DSN
// reports success itself), a failure report for newly failed recipients,
// and once, after queue.delay_notice, the delay notice.
func (m *Manager) notify(s *settings, env *queue.Envelope, failed, relayed []*queue.Recipient, now time.Time, open opener) {
	allowed := mayBounce(s.bounce, env)
	if allowed && len(relayed) > 0 {
		d := &dsn{kind: dsnRelayed, hostname: s.hostname, env: env, rcpts: relayed, now: now}
		if err := queueDSN(m.d.Queue, m.log, d, open); err != nil {
			// Not made again: the recipients are delivered.
			m.log.Error("delivery: DSN dropped", "queue_id", env.ID, "to", policy.WirePath(env.From),
				"action", dsnActions[d.kind], "err", err)
		}
	}
	var report []*queue.Recipient
	for _, r := range failed {
		if !r.DSNSent && wants(r, "FAILURE") {
			report = append(report, r)
		}
		r.DSNSent = true // decided once, whether sent or not
	}
	if allowed && len(report) > 0 {
		d := &dsn{kind: dsnFailed, hostname: s.hostname, env: env, rcpts: report, now: now}
		if err := queueDSN(m.d.Queue, m.log, d, open); err != nil {
			m.owe(s, env, report, now, err)
		}
	} else if len(report) > 0 {
		// The admin grepping the queue ID learns why no bounce came.
		m.log.Info("delivery: no failure DSN", "queue_id", env.ID, "rcpts", len(report), "why", NoDSNReason(s.bounce, env))
		if env.From == "" || env.IsDSN {
			metrics.Active().DSNWithheld(metrics.WithheldNullSender)
		} else {
			metrics.Active().DSNWithheld(metrics.WithheldPolicy)
		}
	}
	pending := env.Pending()
	if s.delayNotice <= 0 || env.DelayNotified || len(pending) == 0 || now.Sub(env.Received) < s.delayNotice {
		return
	}
	var late []*queue.Recipient
	for _, r := range pending {
		if wants(r, "DELAY") {
			late = append(late, r)
		}
	}
	env.DelayNotified = true
	if allowed && len(late) > 0 {
		d := &dsn{kind: dsnDelayed, hostname: s.hostname, env: env, rcpts: late, now: now,
			retryEnd: env.Received.Add(s.maxAge)}
		if err := queueDSN(m.d.Queue, m.log, d, open); err != nil {
			env.DelayNotified = false // try again at the next attempt
			m.log.Warn("delivery: delay DSN not queued; it is tried again at the next attempt",
				"queue_id", env.ID, "to", policy.WirePath(env.From), "err", err)
		}
	}
}

// owe keeps a message whose failure DSN could not be queued (a full
// spool): its failed recipients go back to pending, so the message stays
// queued rather than vanish unreported, and the next attempt fails them
// again (a second 5xx, or expiry) and makes the DSN anew. Postfix, too,
// defers a message whose bounce it cannot write.
func (m *Manager) owe(s *settings, env *queue.Envelope, rcpts []*queue.Recipient, now time.Time, err error) {
	for _, r := range rcpts {
		r.Status, r.DSNSent = queue.RcptPending, false
	}
	if !env.NextAttempt.After(now) {
		env.NextAttempt = now.Add(s.retryAfter(env.Attempts))
	}
	m.log.Warn("delivery: failure DSN not queued; the message stays queued to try again",
		"queue_id", env.ID, "rcpts", len(rcpts), "next_attempt", env.NextAttempt, "err", err)
}

// queueDSN commits d into store, addressed to the original sender. A DSN
// that cannot be made is the caller's to log, as only it knows what
// becomes of it: a failure DSN is owed (the message stays queued), a delay
// notice is tried again at the next attempt, a success DSN is dropped.
func queueDSN(store queue.Store, log *slog.Logger, d *dsn, open opener) error {
	if err := commitDSN(store, d, open); err != nil {
		return err
	}
	metrics.Active().DSN(dsnActions[d.kind])
	log.Info("delivery: DSN queued", "queue_id", d.env.ID, "dsn_id", d.id, "to", policy.WirePath(d.env.From),
		"action", dsnActions[d.kind], "rcpts", len(d.rcpts))
	// The DSN's own first line, as a message from a session has its
	// "queued": grep by the DSN's queue_id leads back to the original.
	log.Info("queued", "queue_id", d.id, "dsn_of", d.env.ID, "from", "", "nrcpt", 1, "action", dsnActions[d.kind])
	return nil
}

func commitDSN(store queue.Store, d *dsn, open opener) error {
	draft, err := store.NewDraft()
	if err != nil {
		return err
	}
	defer draft.Abort()
	d.id = draft.ID()
	orig, err := open()
	if err != nil {
		return err
	}
	defer orig.Close()
	w := &eightBitWriter{w: draft}
	if err := d.write(w, orig); err != nil {
		return err
	}
	// The DSN's body type is its own bytes', not the original's: a reply
	// or an original with 8-bit bytes sent without BODY=8BITMIME makes an
	// 8-bit DSN (RFC 6152 3: delivery then sends it as such only to a hop
	// that offers 8BITMIME, and converts it for others).
	body := "7BIT"
	if w.eight || !isASCII(d.env.From) {
		body = "8BITMIME"
	}
	env := &queue.Envelope{
		From:        "",
		Rcpts:       []*queue.Recipient{{Addr: d.env.From, Status: queue.RcptPending}},
		BodyType:    body,
		SMTPUTF8:    !isASCII(d.env.From),
		Client:      queue.Client{IP: "127.0.0.1", Trusted: true, Listener: "dsn"},
		Received:    d.now,
		NextAttempt: d.now,
		IsDSN:       true,
	}
	return draft.Commit(env, nil)
}

// eightBitWriter notes whether any byte written has the high bit set.
type eightBitWriter struct {
	w     io.Writer
	eight bool
}

func (e *eightBitWriter) Write(p []byte) (int, error) {
	if !e.eight && !isASCII(string(p)) {
		e.eight = true
	}
	return e.w.Write(p)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// leaser is a store that can lease one message by ID. core/queue's Dir does
// not offer it today; Bounce then finds the message through Lease.
type leaser interface {
	LeaseID(id string) (queue.Lease, error)
}

// bouncedText says why `queue bounce` failed a recipient; bouncedReply is
// the reply recorded for it. Both are ours, not a hop's: the DSN gives no
// Remote-MTA for them and an X-Portcullis diagnostic (dsnDiagnostic).
const (
	bouncedText  = "message bounced by the administrator"
	bouncedReply = "554 5.0.0 " + bouncedText
)

// Bounce fails every pending recipient of message id now (`portcullis
// queue bounce ID`) and queues the failure DSN as the bounce policy says.
func Bounce(cfg *config.Config, store queue.Store, id string, now time.Time) error {
	s, err := newSettings(cfg)
	if err != nil {
		return err
	}
	l, err := leaseID(store, id, now)
	if err != nil {
		return err
	}
	env := l.Envelope()
	pending := env.Pending()
	for _, r := range pending {
		r.Status = queue.RcptFailed
		r.LastReply = bouncedReply
	}
	if len(pending) > 0 && mayBounce(s.bounce, env) {
		var report []*queue.Recipient
		for _, r := range pending {
			if wants(r, "FAILURE") {
				report = append(report, r)
			}
			r.DSNSent = true
		}
		if len(report) > 0 {
			d := &dsn{kind: dsnFailed, hostname: s.hostname, env: env, rcpts: report, now: now}
			if err := commitDSN(store, d, l.Open); err != nil {
				l.Release()
				return fmt.Errorf("bounce %s: DSN: %w", id, err)
			}
		}
	}
	return l.Update(env)
}

// leaseID takes message id. Without LeaseID the message is made due now and
// the due messages leased one by one until it comes up; the others are
// released at once, unchanged.
func leaseID(store queue.Store, id string, now time.Time) (queue.Lease, error) {
	if ls, ok := store.(leaser); ok {
		return ls.LeaseID(id)
	}
	if _, err := store.Get(id); err != nil {
		return nil, err
	}
	if err := store.Flush(id); err != nil {
		return nil, err
	}
	var others []queue.Lease
	defer func() {
		for _, o := range others {
			o.Release()
		}
	}()
	for {
		l, err := store.Lease(now.Add(time.Second))
		if err != nil {
			if err == queue.ErrEmpty {
				return nil, queue.ErrLeased // it is due but someone else holds it
			}
			return nil, err
		}
		if l.Envelope().ID == id {
			return l, nil
		}
		others = append(others, l)
	}
}
