package delivery

import (
	"strings"
	"time"

	"github.com/portcullis-mta/portcullis/core/policy"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// logAttempt writes the one line per recipient and attempt that an admin
// greps by queue ID (the Postfix "status=" line, in slog).
func (m *Manager) logAttempt(env *queue.Envelope, r *queue.Recipient, o outcome, start, now time.Time) {
	status, dsn := "deferred", "4.0.0"
	switch {
	case r.Status == queue.RcptDelivered:
		status, dsn = "sent", "2.0.0"
	case r.Status == queue.RcptFailed:
		status, dsn = "bounced", "5.0.0"
	case o.reply == errShutdown:
		status = "interrupted"
	case o.reply == errRequeued:
		status = "requeued"
	}
	if c := replyStatus(r.LastReply); c != "" {
		dsn = c
	}
	m.log.Info("delivery",
		"queue_id", env.ID,
		"rcpt", policy.WirePath(r.Addr),
		"relay", o.hop,
		"tls", o.tls,
		"reply", r.LastReply,
		"dsn", dsn,
		"status", status,
		"delay", now.Sub(env.Received).Round(time.Millisecond).String(),
		"attempt_time", now.Sub(start).Round(time.Millisecond).String(),
		"attempts", r.Attempts,
	)
}

// replyStatus is the enhanced status code of a reply line (Postfix's
// dsn=), taken only when its class is the reply's: "250 2.0.0 ok" gives
// 2.0.0, "550 4.2.2 x" nothing.
func replyStatus(reply string) string {
	f := strings.Fields(reply)
	if len(f) >= 2 && len(f[0]) == 3 && strings.Count(f[1], ".") == 2 && f[1][0] == f[0][0] &&
		f[1][0] >= '2' && f[1][0] <= '5' {
		return f[1]
	}
	return ""
}
