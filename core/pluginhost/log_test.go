package pluginhost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
)

func TestStderrWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   []string // logged lines, as "LEVEL line"
	}{
		{"line and newline apart", []string{"hello", "\n"}, []string{"INFO hello"}},
		{"chunks", []string{"a\nb", "c\n\n"}, []string{"INFO a", "INFO bc"}},
		{"hclog JSON left to hclog", []string{`{"@level":"info","@message":"m"}` + "\n", "{not json}\n"},
			[]string{"INFO {not json}"}},
		{"panic trace as errors", []string{"ok\npanic: boom\n\ngoroutine 1 [running]:\n"},
			[]string{"INFO ok", "ERROR panic: boom", "ERROR goroutine 1 [running]:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := &stderrWriter{l: slog.New(slog.NewJSONHandler(&buf, nil))}
			for _, s := range tt.writes {
				w.Write([]byte(s))
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				var rec struct{ Level, Line string }
				if l != "" && json.Unmarshal([]byte(l), &rec) == nil {
					got = append(got, rec.Level+" "+rec.Line)
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("logged %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzStderrWriter: whatever a plugin prints, the writer neither panics
// nor lets a line break into one log record's line.
func FuzzStderrWriter(f *testing.F) {
	f.Add([]byte("plain\n"), 3)
	f.Add([]byte(`{"@message":1}`+"\n{\"@message\":\"x\"}\n"), 1)
	f.Add([]byte("panic: x\n\x00\xff\r\n"), 2)
	f.Fuzz(func(t *testing.T, out []byte, split int) {
		var buf bytes.Buffer
		w := &stderrWriter{l: slog.New(slog.NewJSONHandler(&buf, nil))}
		if split <= 0 || split > len(out) {
			split = len(out)
		}
		w.Write(out[:split])
		w.Write(out[split:])
		w.Write([]byte("\n"))
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var rec struct{ Line string }
			if l == "" {
				continue
			}
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("log record is not one JSON line: %q", l)
			}
			if strings.Contains(rec.Line, "\n") {
				t.Fatalf("line %q keeps a newline", rec.Line)
			}
		}
	})
}

// TestSinkReservedKeys: a plugin's log line cannot put a second stage,
// time, level or msg into the daemon's record, so it cannot pass itself off
// as another stage; its own values are kept as plugin_KEY.
func TestSinkReservedKeys(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, nil))
	il := hclogFor(l, "av", "stderr")
	il.Info("scanned", "stage", "bayes", "msg", "forged", "level", "DEBUG", "time", "x", "timestamp", "t", "queue_id", "Q1")
	line := strings.TrimSpace(buf.String())
	for _, k := range []string{`"stage"`, `"msg"`, `"level"`, `"time"`} {
		if n := strings.Count(line, k+":"); n != 1 {
			t.Errorf("key %s appears %d times in %s", k, n, line)
		}
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"stage": "av", "msg": "scanned", "level": "INFO", "plugin_stage": "bayes",
		"plugin_msg": "forged", "plugin_level": "DEBUG", "plugin_time": "x", "queue_id": "Q1"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v (record %s)", k, rec[k], v, line)
		}
	}
	if _, ok := rec["timestamp"]; ok {
		t.Errorf("the plugin's timestamp was kept: %s", line)
	}
}

// TestSinkArgsOrderAndNumbers: a plugin's attributes arrive from JSON, as a
// map of float64s; they are logged in key order, and whole numbers as
// integers (7000000, not 7e+06).
func TestSinkArgsOrderAndNumbers(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	il := hclogFor(l, "st", "stderr")
	il.Info("sized", "zeta", float64(7000000), "alpha", 2.5, "mid", float64(-3), "big", float64(1<<60))
	want := `level=INFO msg=sized stage=st alpha=2.5 big=1.152921504606847e+18 mid=-3 zeta=7000000`
	if got := strings.TrimSpace(buf.String()); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestSinkFollowsLevel: the level is asked at every line, so a reload that
// turns log.level to debug brings a running plugin's debug lines too.
func TestSinkFollowsLevel(t *testing.T) {
	var buf bytes.Buffer
	lv := &slog.LevelVar{}
	lv.Set(slog.LevelInfo)
	il := hclogFor(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: lv})), "st", "stderr")
	il.Debug("before", "k", "v")
	lv.Set(slog.LevelDebug)
	il.Debug("after", "k", "v")
	if out := buf.String(); strings.Contains(out, "msg=before") || !strings.Contains(out, "msg=after") {
		t.Errorf("log %q: want only the line after the level changed", out)
	}
}

// TestSinkClosedPipeIsDebug: go-plugin's complaints about reading the
// pipes Kill closed ("error encountered while scanning stdout: read |0:
// file already closed") are debug lines, not the ERROR noise that came
// with every failed start; its other errors keep their level.
func TestSinkClosedPipeIsDebug(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	il := hclogFor(l, "av", "stderr")
	closed := &os.PathError{Op: "read", Path: "|0", Err: os.ErrClosed}
	il.Error("error encountered while scanning stdout", "error", closed)
	il.Error("reading plugin stderr", "error", fmt.Errorf("wrapped: %w", closed))
	il.Error("a real error", "error", errors.New("boom"))
	out := buf.String()
	if strings.Contains(out, "scanning stdout") || strings.Contains(out, "reading plugin stderr") {
		t.Errorf("closed-pipe errors logged at info or above:\n%s", out)
	}
	if !strings.Contains(out, `level=ERROR msg="a real error"`) {
		t.Errorf("a real error lost:\n%s", out)
	}
}
