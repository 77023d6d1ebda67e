package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a config file, at a 1-based line and column.
type Error struct {
	File      string
	Line, Col int
	Msg       string
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
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{syntaxError(name, err)}
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
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	return &cfg, nil
}

// syntaxError turns yaml's "yaml: line N: msg" into a positioned Error. The
// yaml parser gives no column for syntax errors; 1 is the honest answer.
func syntaxError(name string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if _, scanErr := fmt.Sscanf(n, "%d", &line); scanErr == nil {
				msg = after
			}
		}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msg = strings.Join(te.Errors, "; ")
	}
	return &Error{File: name, Line: line, Col: 1, Msg: msg}
}
