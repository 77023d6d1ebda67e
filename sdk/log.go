package sdk

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
)

// The attribute keys the gateway uses for the same facts in its own log
// lines, so that one grep for a queue ID finds the stage's lines too.
const (
	logKeySession = "session"
	logKeyQueueID = "queue_id"
)

// callKey is the context key of the request a Check call serves.
type callKey struct{}

// callIDs is what a log line needs of the request being checked.
type callIDs struct {
	session, queueID string
}

// withCall returns ctx carrying req's session and queue IDs for
// RequestLogHandler.
func withCall(ctx context.Context, req *Request) context.Context {
	return context.WithValue(ctx, callKey{}, callIDs{session: req.SessionID, queueID: req.QueueID})
}

// RequestLogHandler wraps next so that a record logged with the context
// of a Check call (or one derived from it) carries that call's session ID
// as "session" and, from the data phase on, its queue ID as "queue_id",
// the keys the gateway's own lines use. A record that already has one of
// those attributes keeps its own. Records logged without such a context
// (slog.Info rather than slog.InfoContext(ctx, ...)) pass through as they
// are.
//
// Serve installs it on the default logger. A test that wants to see the
// IDs in a stage's log lines installs it itself, around any handler.
func RequestLogHandler(next slog.Handler) slog.Handler {
	return requestHandler{next: next}
}

// requestHandler adds the IDs at the top level, also to the records of a
// logger with groups (logger.WithGroup("g")): there they would land inside
// the group (g.session=...), where a grep for queue_id=ID misses them.
// base is the handler before the first group and ops what came after it,
// replayed on base once the IDs are added; nil when no group is open.
type requestHandler struct {
	next slog.Handler
	base slog.Handler
	ops  []func(slog.Handler) slog.Handler
}

func (h requestHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h requestHandler) Handle(ctx context.Context, r slog.Record) error {
	ids, ok := ctx.Value(callKey{}).(callIDs)
	if !ok {
		return h.next.Handle(ctx, r)
	}
	if h.base != nil {
		var as []slog.Attr
		if ids.session != "" {
			as = append(as, slog.String(logKeySession, ids.session))
		}
		if ids.queueID != "" {
			as = append(as, slog.String(logKeyQueueID, ids.queueID))
		}
		next := h.base.WithAttrs(as)
		for _, op := range h.ops {
			next = op(next)
		}
		return next.Handle(ctx, r)
	}
	hasSession, hasQueue := ids.session == "", ids.queueID == ""
	r.Attrs(func(a slog.Attr) bool {
		hasSession = hasSession || a.Key == logKeySession
		hasQueue = hasQueue || a.Key == logKeyQueueID
		return !hasSession || !hasQueue
	})
	if !hasSession || !hasQueue {
		r = r.Clone()
		if !hasSession {
			r.AddAttrs(slog.String(logKeySession, ids.session))
		}
		if !hasQueue {
			r.AddAttrs(slog.String(logKeyQueueID, ids.queueID))
		}
	}
	return h.next.Handle(ctx, r)
}

func (h requestHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := requestHandler{next: h.next.WithAttrs(as), base: h.base}
	if h.base != nil {
		out.ops = append(slices.Clip(h.ops), func(x slog.Handler) slog.Handler { return x.WithAttrs(as) })
	}
	return out
}

func (h requestHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	base := h.base
	if base == nil {
		base = h.next
	}
	return requestHandler{next: h.next.WithGroup(name), base: base,
		ops: append(slices.Clip(h.ops), func(x slog.Handler) slog.Handler { return x.WithGroup(name) })}
}

// newHostLogHandler writes JSON lines to w in the shape go-plugin's host
// parses as hclog entries (@level, @message, @timestamp), so that levels
// and attributes survive the trip through the plugin's stderr, with the
// IDs of the call in the record's context (RequestLogHandler).
func newHostLogHandler(w io.Writer) slog.Handler {
	return RequestLogHandler(clashRenamer{slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			// Only the record's own time, level and message have these
			// keys here: clashRenamer renamed the stage's attributes.
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format("2006-01-02T15:04:05.000000Z07:00"))
			case slog.LevelKey:
				if l, ok := a.Value.Any().(slog.Level); ok {
					return slog.String("@level", hclogLevel(l))
				}
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	})})
}

// clashRenamer renames a stage's own top-level attributes named time,
// level or msg, or starting with @, to plugin_time, plugin_level,
// plugin_msg, plugin_@message, as the host names
// a plugin's "stage" attribute plugin_stage. The JSON handler passes them
// through ReplaceAttr as it does the record's own: taken for the record's
// level, slog.InfoContext(ctx, "x", "level", "high") made the stage's call
// panic (and its on_error answer the message); a "msg" replaced the
// line's message. Logging never changes a verdict.
type clashRenamer struct{ h slog.Handler }

func (c clashRenamer) Enabled(ctx context.Context, l slog.Level) bool { return c.h.Enabled(ctx, l) }

func (c clashRenamer) Handle(ctx context.Context, r slog.Record) error {
	clash := false
	r.Attrs(func(a slog.Attr) bool {
		clash = clash || builtinKey(a.Key)
		return !clash
	})
	if !clash {
		return c.h.Handle(ctx, r)
	}
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(renameClash(a))
		return true
	})
	return c.h.Handle(ctx, nr)
}

func (c clashRenamer) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = renameClash(a)
	}
	return clashRenamer{c.h.WithAttrs(out)}
}

// WithGroup: attributes in a group cannot clash with the record's own.
func (c clashRenamer) WithGroup(name string) slog.Handler { return c.h.WithGroup(name) }

// builtinKey: slog's own keys, and hclog's (@message, @level,
// @timestamp: any key with an @), which the line carries to the host.
func builtinKey(k string) bool {
	return k == slog.TimeKey || k == slog.LevelKey || k == slog.MessageKey || strings.HasPrefix(k, "@")
}

func renameClash(a slog.Attr) slog.Attr {
	if builtinKey(a.Key) {
		a.Key = "plugin_" + a.Key
	}
	return a
}

func hclogLevel(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}
