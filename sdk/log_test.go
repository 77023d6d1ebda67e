package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk/internal/pb"
)

// logStage logs one line with Check's context to its logger, and one more
// as the case asks.
type logStage struct {
	log  *slog.Logger
	also func(ctx context.Context, l *slog.Logger)
}

func (s logStage) Info() Info { return Info{Name: "log", Phases: Phases} }

func (logStage) Configure(context.Context, Env, map[string]any) error { return nil }

func (s logStage) Check(ctx context.Context, _ *Request) (*Result, error) {
	s.log.InfoContext(ctx, "checked", "n", 1)
	if s.also != nil {
		s.also(ctx, s.log)
	}
	return &Result{}, nil
}

// decodeLines parses the JSON lines the host reads from a plugin's stderr.
func decodeLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		m := map[string]any{}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		delete(m, "@timestamp")
		out = append(out, m)
	}
	return out
}

// TestHostLogCarriesTheCall: a stage's slog.InfoContext(ctx, ...) in Check
// reaches the host with the call's session and queue ID under the keys the
// gateway's own lines use, without the stage adding them.
func TestHostLogCarriesTheCall(t *testing.T) {
	tests := []struct {
		name string
		req  *pb.CheckRequest
		also func(ctx context.Context, l *slog.Logger)
		want []map[string]any
	}{
		{
			name: "data phase",
			req:  &pb.CheckRequest{Phase: "data", SessionId: "s1", QueueId: "Q1"},
			want: []map[string]any{{"@level": "info", "@message": "checked", "n": 1.0, "session": "s1", "queue_id": "Q1"}},
		},
		{
			name: "before data there is no queue ID",
			req:  &pb.CheckRequest{Phase: "rcpt", SessionId: "s2"},
			want: []map[string]any{{"@level": "info", "@message": "checked", "n": 1.0, "session": "s2"}},
		},
		{
			name: "derived context, other levels, own IDs kept, no context",
			req:  &pb.CheckRequest{Phase: "data", SessionId: "s3", QueueId: "Q3"},
			also: func(ctx context.Context, l *slog.Logger) {
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				l.WarnContext(ctx, "derived")
				l.DebugContext(ctx, "own", "queue_id", "mine")
				l.Error("no context")
			},
			want: []map[string]any{
				{"@level": "info", "@message": "checked", "n": 1.0, "session": "s3", "queue_id": "Q3"},
				{"@level": "warn", "@message": "derived", "session": "s3", "queue_id": "Q3"},
				{"@level": "debug", "@message": "own", "queue_id": "mine", "session": "s3"},
				{"@level": "error", "@message": "no context"},
			},
		},
		{
			// A stage's attributes named like the record's own are its
			// own: they made the call panic (level), or replaced the
			// message (msg); logging never changes a verdict.
			name: "attributes named time, level, msg",
			req:  &pb.CheckRequest{Phase: "data", SessionId: "s4", QueueId: "Q4"},
			also: func(ctx context.Context, l *slog.Logger) {
				l.InfoContext(ctx, "clash", "level", "high", "time", "yesterday", "msg", "other")
				l.With("level", 3).InfoContext(ctx, "with")
			},
			want: []map[string]any{
				{"@level": "info", "@message": "checked", "n": 1.0, "session": "s4", "queue_id": "Q4"},
				{"@level": "info", "@message": "clash", "plugin_level": "high", "plugin_time": "yesterday", "plugin_msg": "other",
					"session": "s4", "queue_id": "Q4"},
				{"@level": "info", "@message": "with", "plugin_level": 3.0, "session": "s4", "queue_id": "Q4"},
			},
		},
		{
			// Inside a group the IDs would be g.session=..., which a grep
			// for queue_id=ID misses; hclog's @ keys would replace the
			// line's own.
			name: "groups and @ keys",
			req:  &pb.CheckRequest{Phase: "data", SessionId: "s5", QueueId: "Q5"},
			also: func(ctx context.Context, l *slog.Logger) {
				l.WithGroup("g").With("a", 1).WithGroup("h").InfoContext(ctx, "grouped", "k", "v")
				l.InfoContext(ctx, "at", "@message", "m", "@level", 1)
			},
			want: []map[string]any{
				{"@level": "info", "@message": "checked", "n": 1.0, "session": "s5", "queue_id": "Q5"},
				{"@level": "info", "@message": "grouped", "session": "s5", "queue_id": "Q5",
					"g": map[string]any{"a": 1.0, "h": map[string]any{"k": "v"}}},
				{"@level": "info", "@message": "at", "plugin_@message": "m", "plugin_@level": 1.0, "session": "s5", "queue_id": "Q5"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := &stageServer{stage: logStage{log: slog.New(newHostLogHandler(&buf)), also: tt.also}}
			if _, err := s.Check(context.Background(), tt.req); err != nil {
				t.Fatal(err)
			}
			if got := decodeLines(t, buf.Bytes()); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("log lines\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}
