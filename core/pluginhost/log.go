package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// hclogFor returns the logger go-plugin uses for one stage: everything it
// and the plugin log (the plugin's slog lines arrive as hclog JSON on its
// stderr) goes to l with stage=<name>. rawSuffix names go-plugin's logger
// for the plugin's stderr, whose lines without attributes are raw output:
// stderrWriter logs those at Info, so the sink drops go-plugin's Debug copy.
//
// Every line reaches the sink, which asks l whether its level is enabled
// now: log.level can change at a reload (a slog.LevelVar), and a level
// fixed when the plugin started kept its debug lines out after a reload
// to debug.
func hclogFor(l *slog.Logger, stage, rawSuffix string) hclog.Logger {
	il := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "plugin", Output: io.Discard, Level: hclog.Debug})
	il.RegisterSink(&slogSink{l: l.With("stage", stage), rawSuffix: "." + rawSuffix})
	return il
}

type slogSink struct {
	l         *slog.Logger
	rawSuffix string
}

func (s *slogSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	if closedPipe(args) {
		// go-plugin reading the pipes that Kill closed (procRunner):
		// "error encountered while scanning stdout: file already closed"
		// said nothing but that the plugin was stopped, at ERROR.
		level = hclog.Debug
	}
	if !s.l.Enabled(context.Background(), slogLevel(level)) || (len(args) == 0 && strings.HasSuffix(name, s.rawSuffix)) {
		return
	}
	s.l.Log(context.Background(), slogLevel(level), msg, pluginArgs(args)...)
}

// closedPipe reports an "error" argument that is a read from a closed file.
func closedPipe(args []any) bool {
	for i := 0; i+1 < len(args); i += 2 {
		if err, ok := args[i+1].(error); ok && args[i] == "error" && errors.Is(err, os.ErrClosed) {
			return true
		}
	}
	return false
}

// pluginArgs prepares a plugin's key/value pairs for the daemon's log.
// go-plugin appends the plugin's own timestamp; slog stamps its own, so it
// is dropped. A key the daemon writes itself (stage, and slog's time,
// level, msg) would appear twice in the record, which JSON tools resolve
// by keeping one of them, and a plugin could then pass its lines off as
// another stage's: such a key is renamed plugin_KEY.
//
// The attributes cross as a JSON object, which go-plugin decodes into a
// map: their order is lost and every number is a float64. They are put in
// key order, so that a line reads the same each time, and a float64 that
// holds a whole number below 2^53 is logged as an integer (7000000, not
// 7e+06).
func pluginArgs(args []any) []any {
	type kv struct {
		k string
		v any
	}
	pairs := make([]kv, 0, len(args)/2)
	var odd []any
	for i := 0; i < len(args); i += 2 {
		if i+1 == len(args) {
			odd = append(odd, args[i])
			break
		}
		k, ok := args[i].(string)
		if !ok {
			k = fmt.Sprint(args[i])
		}
		switch k {
		case "timestamp":
			continue
		case "stage", slog.TimeKey, slog.LevelKey, slog.MessageKey, slog.SourceKey:
			k = "plugin_" + k
		}
		v := args[i+1]
		if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			v = int64(f)
		}
		pairs = append(pairs, kv{k, v})
	}
	slices.SortStableFunc(pairs, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	out := make([]any, 0, 2*len(pairs)+len(odd))
	for _, p := range pairs {
		out = append(out, p.k, p.v)
	}
	return append(out, odd...)
}

func slogLevel(l hclog.Level) slog.Level {
	switch {
	case l <= hclog.Debug:
		return slog.LevelDebug
	case l == hclog.Info:
		return slog.LevelInfo
	case l == hclog.Warn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// stderrWriter logs a plugin's raw output lines (a panic, a stray print)
// under its stage name; hclog JSON lines are left to the hclog path.
// Writes need not be whole lines: go-plugin writes a line and its newline
// in separate calls, and forwarded stdio comes in arbitrary chunks.
type stderrWriter struct {
	l      *slog.Logger
	stream string // "" is stderr

	mu      sync.Mutex
	buf     []byte
	inPanic bool // the rest is a Go panic's trace: log it as errors
}

func (w *stderrWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a runaway line: log what we have
		w.line(w.buf)
		w.buf = nil
	}
	return len(p), nil
}

func (w *stderrWriter) line(b []byte) {
	if len(bytes.TrimSpace(b)) == 0 {
		return
	}
	if t := bytes.TrimLeft(b, " \t\r"); len(t) > 0 && t[0] == '{' {
		var m map[string]any
		if json.Unmarshal(b, &m) == nil && m["@message"] != nil {
			return
		}
	}
	if w.stream != "" {
		w.l.Info("plugin "+w.stream, "line", string(b))
		return
	}
	if bytes.HasPrefix(b, []byte("panic: ")) || bytes.HasPrefix(b, []byte("fatal error: ")) {
		w.inPanic = true
	}
	level := slog.LevelInfo
	if w.inPanic {
		level = slog.LevelError
	}
	w.l.Log(context.Background(), level, "plugin stderr", "line", string(b))
}
