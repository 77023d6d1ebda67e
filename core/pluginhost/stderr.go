package pluginhost

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// go-plugin reads a plugin's stderr a line at a time and parses every line
// that is a JSON object as an hclog entry. Its parser asserts that
// @message, @level and @timestamp are strings: a plugin line such as
// {"@message": 5} panicked in go-plugin's goroutine and took the whole
// gateway down. A line longer than its 64 KiB buffer is split into
// debug-level pieces, and a JSON line it cannot read is dropped (logged at
// debug as raw text, which stderrWriter leaves to the hclog path). So the
// host reads the plugin's stderr itself and hands go-plugin only lines it
// can take whole (stderrFilter), keeping the last few for the error a
// failed start reports (Diagnose).
const (
	// maxLogLine is the longest line handed to go-plugin, newline
	// included: within its default PluginLogBufferSize (64 KiB).
	maxLogLine = 60 << 10
	// maxLogValue is what a string attribute keeps of an over-long line.
	maxLogValue = 2 << 10
	// maxReadLine bounds what is read of one line before the rest of it
	// is skipped.
	maxReadLine = 1 << 20
	// hclogTime is the only @timestamp layout go-plugin parses.
	hclogTime = "2006-01-02T15:04:05.000000Z07:00"
	// tailLines is how many of the last raw lines are kept for Diagnose.
	tailLines = 5
)

// stderrFilter is the plugin's stderr as go-plugin reads it: each line made
// safe for go-plugin's parser (safeLogLine).
type stderrFilter struct {
	src  io.ReadCloser
	br   *bufio.Reader
	out  []byte // the line being handed over
	err  error  // src's error, returned once out is drained
	mu   sync.Mutex
	tail []string      // the last raw lines, for Diagnose
	eof  chan struct{} // closed when src is done
	once sync.Once
}

func newStderrFilter(src io.ReadCloser) *stderrFilter {
	return &stderrFilter{src: src, br: bufio.NewReaderSize(src, 64<<10), eof: make(chan struct{})}
}

func (f *stderrFilter) Read(p []byte) (int, error) {
	for len(f.out) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		line, err := f.readLine()
		if len(line) > 0 {
			f.remember(line)
			f.out = safeLogLine(line)
		}
		if err != nil {
			f.err = err
			f.once.Do(func() { close(f.eof) })
		}
	}
	n := copy(p, f.out)
	f.out = f.out[n:]
	return n, nil
}

// readLine reads one line without its newline; of a line longer than
// maxReadLine, the start and a note of what was skipped.
func (f *stderrFilter) readLine() ([]byte, error) {
	var line []byte
	skipped := 0
	for {
		chunk, err := f.br.ReadSlice('\n')
		switch room := maxReadLine - len(line); {
		case len(chunk) <= room:
			line = append(line, chunk...)
		default:
			line = append(line, chunk[:room]...)
			skipped += len(chunk) - room
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimRight(line, "\r\n")
		if skipped > 0 {
			line = append(line, " [line cut: "+strconv.Itoa(skipped)+" more bytes]"...)
		}
		return line, err
	}
}

func (f *stderrFilter) remember(line []byte) {
	s := string(line)
	if len(s) > 512 {
		s = strings.ToValidUTF8(s[:512], "") + "…"
	}
	f.mu.Lock()
	f.tail = append(f.tail, s)
	if len(f.tail) > tailLines {
		f.tail = f.tail[len(f.tail)-tailLines:]
	}
	f.mu.Unlock()
}

// lastLines returns the last raw lines the plugin wrote, waiting up to
// wait for it to finish writing (a plugin that exits at start writes its
// reason just before).
func (f *stderrFilter) lastLines(wait time.Duration) []string {
	select {
	case <-f.eof:
	case <-time.After(wait):
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tail...)
}

func (f *stderrFilter) Close() error { return f.src.Close() }

// safeLogLine returns line, with its newline, in a form go-plugin takes
// whole: in a JSON object, @message and @level are strings (@level one
// hclog knows, else "info", so that the line is neither dropped nor
// demoted), @timestamp is in go-plugin's layout or gone (the gateway stamps
// its own time), and a plugin's own "timestamp" attribute is renamed
// plugin_timestamp (go-plugin appends its own under that key, which the
// host drops); a line over maxLogLine keeps the start of each long string
// attribute, or of the text.
func safeLogLine(line []byte) []byte {
	// JSON's white space before the object too: go-plugin's
	// json.Unmarshal takes " {...}" as an object all the same.
	if bytes.HasPrefix(bytes.TrimLeft(line, " \t\r\n"), []byte("{")) {
		if out, ok := safeJSONLine(line); ok {
			return append(out, '\n')
		}
	}
	if len(line) >= maxLogLine {
		line = append(cutUTF8(line, maxLogLine-64), " [line cut: "+strconv.Itoa(len(line))+" bytes]"...)
	}
	return append(line, '\n')
}

// safeJSONLine makes a JSON object line safe; ok is false for a line that
// is not one (go-plugin then logs it as raw text).
func safeJSONLine(line []byte) ([]byte, bool) {
	var m map[string]any
	if json.Unmarshal(line, &m) != nil || m == nil {
		return nil, false
	}
	_, msg := m["@message"]
	_, lvl := m["@level"]
	_, ts := m["@timestamp"]
	_, plainTS := m["timestamp"]
	changed := false
	if msg || lvl || ts || plainTS {
		// An hclog entry, or a line go-plugin would read as one.
		if _, ok := m["@message"].(string); !ok {
			m["@message"] = textOf(m["@message"])
			changed = true
		}
		if s, ok := m["@level"].(string); !ok || hclogLevel(s) != strings.ToLower(strings.TrimSpace(s)) {
			if lvl {
				m["plugin_level"] = m["@level"]
			}
			m["@level"] = "info"
			if ok {
				m["@level"] = hclogLevel(s)
			}
			changed = true
		}
		if v, ok := m["@timestamp"]; ok {
			if s, isStr := v.(string); !isStr || !validTime(s) {
				delete(m, "@timestamp")
				changed = true
			}
		}
		if plainTS {
			m["plugin_timestamp"] = m["timestamp"]
			delete(m, "timestamp")
			changed = true
		}
	}
	// Other JSON lines go-plugin hands on as raw text (stderrWriter logs
	// them); only their length matters.
	if !changed && len(line) < maxLogLine {
		return line, true
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil, false
	}
	if len(out) >= maxLogLine {
		out = shrink(m, len(out))
	}
	return out, out != nil
}

// shrink cuts m's long string values (and, if that is not enough, drops
// its other attributes) until it encodes within maxLogLine; n is the
// length it had.
func shrink(m map[string]any, n int) []byte {
	for k, v := range m {
		if s, ok := v.(string); ok && len(s) > maxLogValue {
			m[k] = string(cutUTF8([]byte(s), maxLogValue)) + "…"
		}
	}
	m["plugin_line_cut"] = n
	if b, err := json.Marshal(m); err == nil && len(b) < maxLogLine {
		return b
	}
	kept := map[string]any{"plugin_line_cut": n}
	for _, k := range []string{"@message", "@level", "@timestamp", "session", "queue_id"} {
		if v, ok := m[k]; ok {
			kept[k] = v
		}
	}
	b, _ := json.Marshal(kept)
	return b
}

func textOf(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// hclogLevel is the level name hclog reads for s: its own names as they
// are, the common other spellings (WARNING, err, fatal...) mapped, and
// anything else info. hclog takes an unknown name for no level, and
// go-plugin then logs the line as raw text at debug, where it was lost.
func hclogLevel(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return "trace"
	case "debug":
		return "debug"
	case "info", "notice":
		return "info"
	case "warn", "warning":
		return "warn"
	case "error", "err", "fatal", "critical", "crit", "alert", "emerg", "panic":
		return "error"
	}
	return "info"
}

func validTime(s string) bool {
	_, err := time.Parse(hclogTime, s)
	return err == nil
}

// cutUTF8 returns b cut to at most n bytes, not inside a UTF-8 sequence.
func cutUTF8(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return b[:n]
}
