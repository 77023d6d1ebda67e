package pipeline

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/portcullis-mta/portcullis/sdk"
)

// traceFields are the fields no stage may remove: the trace of the hops
// the message took (RFC 5322 3.6.7). An MTA must not change or delete a
// Received field added before it (RFC 5321 4.4), and the other hops' fields
// are how a postmaster follows a message back. Authentication-Results is
// not among them: a border MTA must remove the fields that claim its own
// authserv-id and may remove others (RFC 8601 5), which msgauth does.
var traceFields = []string{"Received", "Return-Path"}

// keepTrace is a stage's header edits without the removals of trace
// fields, each refused one logged with the stage's name; the stage's other
// edits still apply.
func (r *Engine) keepTrace(req *sdk.Request, st *stage, edits []sdk.HeaderEdit) []sdk.HeaderEdit {
	var out []sdk.HeaderEdit
	for i, e := range edits {
		if e.Op != sdk.HeaderRemove || !isTraceField(e.Name) {
			if out != nil {
				out = append(out, e)
			}
			continue
		}
		if out == nil {
			out = append(make([]sdk.HeaderEdit, 0, len(edits)), edits[:i]...)
		}
		attrs := []any{"session", req.SessionID, "stage", st.Name, "field", e.Name}
		if req.QueueID != "" {
			attrs = append(attrs, "queue_id", req.QueueID)
		}
		r.log.Log(context.Background(), slog.LevelWarn, "stage may not remove a trace field (RFC 5321 4.4): kept", attrs...)
	}
	if out == nil {
		return edits
	}
	return out
}

func isTraceField(name string) bool {
	return slices.ContainsFunc(traceFields, func(f string) bool { return strings.EqualFold(name, f) })
}
