package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-mta/portcullis/rules"
)

// Error is one problem in a config file, at a 1-based line and column.
type Error struct {
	File      string
	Line, Col int
	Msg       string

	// Key is the key path the problem is about, as messages write it
	// ("relay.users_file", "dkim.sign[0].key", "include[1]"); for a problem
	// with a whole section it is the section's ("tls", "routes[2]"), and ""
	// for one with the document (a syntax error, a missing key of the top
	// level). It is not part of Error().
	Key string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg) }

// Errors is every problem found in one load, in file order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// About reports whether one of the problems is about key (a key path
// such as "relay.recipients" or "dkim.sign[0]"): about key itself, about a
// key inside it ("dkim.sign[0].key"), or about a section that holds it
// ("dkim", "relay"). Problems with the document as a whole (Key "") are
// not about any key.
func (es Errors) About(key string) bool {
	for _, e := range es {
		if e.Key != "" && (within(e.Key, key) || within(key, e.Key)) {
			return true
		}
	}
	return false
}

// within reports whether key path k is path or lies inside it.
func within(k, path string) bool {
	rest, ok := strings.CutPrefix(k, path)
	return ok && (rest == "" || rest[0] == '.' || rest[0] == '[')
}

// Load reads, decodes and validates the config file at path. Relative paths
// inside it are resolved from its directory. The error, if any, is Errors
// (or a plain error when the file cannot be read).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse decodes and validates data as if read from path (which need not
// exist; its directory anchors relative paths).
func Parse(data []byte, path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	cfg, err := ParseIn(data, path, filepath.Dir(abs))
	if cfg != nil {
		cfg.Path = abs
	}
	return cfg, err
}

// ParseIn decodes and validates data, naming it name in errors and resolving
// relative paths from dir. Config.Path is left empty: the text has no file
// (the embedded quickstart config, for instance).
func ParseIn(data []byte, name, dir string) (*Config, error) {
	cfg, errs := parse(data, name, dir)
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// LoadPartial is Load for a caller that reports problems rather than uses
// the config (`portcullis check`): along with the Errors it returns the
// config as far as it decoded and validated, so that checks of what had
// no problem (the files it names, the rule files) can go on. A value that
// failed keeps its default; Errors.About tells which keys had problems.
// The config is nil only when there is nothing to go on: the file cannot
// be read (a plain error), is not one YAML document, or is too large. Do
// not run with a config that came with errors.
func LoadPartial(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	cfg, err := ParsePartialIn(data, path, filepath.Dir(abs))
	if cfg != nil {
		cfg.Path = abs
	}
	return cfg, err
}

// ParsePartialIn is ParseIn as LoadPartial is Load: the config comes back
// with its Errors whenever there is something to go on.
func ParsePartialIn(data []byte, name, dir string) (*Config, error) {
	cfg, errs := parse(data, name, dir)
	if len(errs) > 0 {
		return cfg, errs
	}
	return cfg, nil
}

// parse decodes and validates data. The config is nil when the document
// cannot be read as one (or is too large); otherwise it is what decoded,
// even with errors.
func parse(data []byte, name, dir string) (*Config, Errors) {
	doc, err := oneDocument(data, name)
	if err != nil {
		return nil, Errors{err}
	}
	cfg := Defaults()
	cfg.Dir = dir
	d := &decoder{file: name, pos: map[any]*yaml.Node{}, elem: setItemDefaults}
	root := &yaml.Node{Kind: yaml.MappingNode, Line: 1, Column: 1}
	if len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	d.decode(root, reflect.ValueOf(&cfg).Elem(), "")
	// Validate even after decode errors: a value that failed to decode
	// kept its default, so this reports only further, real problems.
	v := &validator{decoder: d, cfg: &cfg, root: root}
	v.validate()
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i], d.errs[j]
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	if d.tooLarge {
		return nil, d.errs
	}
	return &cfg, d.errs
}

// oneDocument parses data as one YAML document. yaml.Unmarshal would read
// the first document of a stream and drop the rest without a word; a
// config with a second one (a pasted or concatenated file) is refused.
// An empty (null) document after the first (a trailing "---") is no harm.
func oneDocument(data []byte, name string) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, syntaxError(name, data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
	case err != nil:
		return nil, syntaxError(name, data, err)
	case len(next.Content) > 0 && !isNull(next.Content[0]):
		n := next.Content[0]
		return nil, &Error{File: name, Line: n.Line, Col: n.Column,
			Msg: "a second YAML document (after --- or ...) is not allowed: the config is one document"}
	}
	return &doc, nil
}

// syntaxError turns yaml's "yaml: line N: msg" into a positioned Error. The
// yaml parser gives no column for syntax errors; 1 is the honest answer.
// The reader's errors (control characters, bytes that are not UTF-8) come
// without a line: the offending byte is found in data.
func syntaxError(name string, data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if _, scanErr := fmt.Sscanf(n, "%d", &line); scanErr == nil {
				msg = after
				line = rules.YAMLErrorLine(data, line, msg)
			}
		}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msg = strings.Join(te.Errors, "; ")
	}
	col := 1
	if msg == strings.TrimPrefix(err.Error(), "yaml: ") { // no line in the message
		if l, c, ok := rules.YAMLBadByte(data); ok {
			line, col = l, c
		}
	}
	return &Error{File: name, Line: line, Col: col, Msg: msg}
}
