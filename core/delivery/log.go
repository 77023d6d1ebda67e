package delivery

import (
	"time"

	"github.com/portcullis-mta/portcullis/core/queue"
)

// logAttempt writes the one line per recipient and attempt that an admin
// greps by queue ID (the Postfix "status=" line, in slog).
func (m *Manager) logAttempt(env *queue.Envelope, r *queue.Recipient, o outcome, start, now time.Time) {
	status := "deferred"
	switch {
	case r.Status == queue.RcptDelivered:
		status = "sent"
	case r.Status == queue.RcptFailed:
		status = "bounced"
	case o.reply == errShutdown:
		status = "interrupted"
	}
	m.log.Info("delivery",
		"queue_id", env.ID,
		"rcpt", r.Addr,
		"relay", o.hop,
		"tls", o.tls,
		"reply", r.LastReply,
		"status", status,
		"delay", now.Sub(env.Received).Round(time.Millisecond).String(),
		"attempt_time", now.Sub(start).Round(time.Millisecond).String(),
		"attempts", r.Attempts,
	)
}
