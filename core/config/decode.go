package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the work of one decode: aliases can make a small file
// expand exponentially ("billion laughs"); a real config has a few hundred.
const maxNodes = 100000

var (
	nodeType        = reflect.TypeOf(yaml.Node{})
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// decoder walks a yaml.Node tree into a typed value by reflection, so that
// every problem is reported at the position of the node that caused it and
// unknown keys are errors (yaml's KnownFields stops at the first one).
type decoder struct {
	file  string
	errs  Errors
	pos   map[any]*yaml.Node    // address of a decoded field -> its node
	bad   map[*yaml.Node]bool   // nodes already reported: validation keeps quiet on them
	keys  map[*yaml.Node]string // node -> the key path it was decoded at (Error.Key)
	nodes int
	elem  func(reflect.Value) // fills a fresh slice element with its defaults

	// tooLarge is set when the decode stopped at maxNodes: what was
	// decoded is then no sound base for any further check.
	tooLarge bool
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	if d.bad == nil {
		d.bad = map[*yaml.Node]bool{}
	}
	d.bad[n] = true
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...),
		Key: d.keys[n]})
}

// markKey records that node n stands for the key path path, for the Key of
// the problems reported at it.
func (d *decoder) markKey(n *yaml.Node, path string) {
	if d.keys == nil {
		d.keys = map[*yaml.Node]string{}
	}
	d.keys[n] = path
}

// decode fills v (addressable) from n; path names the key for messages.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.nodes++; d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.tooLarge = true
			d.errorf(n, "document too large or too many aliases")
		}
		return
	}
	n = resolve(n)
	d.markKey(n, path)
	if v.CanAddr() {
		d.pos[v.Addr().Interface()] = n
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.errorf(n, "%s: %v", path, err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Pointer:
		if isNull(n) {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	default:
		d.decodeScalar(n, v, path)
	}
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return // "tls:" with nothing after it keeps the defaults
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: want a mapping of keys", orRoot(path))
		return
	}
	fields := yamlFields(v.Type())
	pairs, explicit := d.pairs(n, path)
	seen := map[string]bool{}
	for _, p := range pairs {
		k, val := p[0], p[1]
		if k.Kind != yaml.ScalarNode {
			d.markKey(k, path)
			d.errorf(k, "%s: keys must be plain words", orRoot(path))
			continue
		}
		key := join(path, k.Value)
		d.markKey(k, key)
		idx, ok := fields[k.Value]
		switch {
		case !ok:
			d.errorf(k, "unknown key %q%s", key, suggest(k.Value, fields))
		case seen[k.Value] && explicit[k]:
			d.errorf(k, "duplicate key %q", key)
		case seen[k.Value]: // a merged key that the mapping itself sets
		default:
			seen[k.Value] = true
			d.decode(val, v.Field(idx), key)
		}
	}
}

// pairs returns a mapping's key and value nodes: its own, in order, then
// those its merge keys bring (YAML merge, "<<: *anchor" or "<<: [*a, *b]")
// that it does not set itself, earlier merged mappings first so that they
// win. explicit marks the mapping's own keys.
func (d *decoder) pairs(n *yaml.Node, path string) (pairs [][2]*yaml.Node, explicit map[*yaml.Node]bool) {
	m := &merger{d: d, path: path, explicit: map[*yaml.Node]bool{}, have: map[string]bool{},
		visiting: map[*yaml.Node]bool{}}
	m.collect(n, true)
	return m.pairs, m.explicit
}

// merger gathers the pairs of one mapping and of the mappings merged into it.
type merger struct {
	d        *decoder
	path     string
	pairs    [][2]*yaml.Node
	explicit map[*yaml.Node]bool
	have     map[string]bool     // keys gathered so far: a merged one adds nothing
	visiting map[*yaml.Node]bool // mappings being merged: an alias back to one is a cycle
}

func (m *merger) collect(n *yaml.Node, own bool) {
	m.visiting[n] = true
	defer delete(m.visiting, n)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind == yaml.ScalarNode && k.Tag == "!!merge":
			merges = append(merges, val)
			continue
		case own:
			m.explicit[k] = true
		case k.Kind == yaml.ScalarNode && m.have[k.Value]:
			continue
		}
		m.have[k.Value] = true
		m.pairs = append(m.pairs, [2]*yaml.Node{k, val})
	}
	for _, v := range merges {
		sources := []*yaml.Node{v}
		if resolve(v).Kind == yaml.SequenceNode {
			sources = resolve(v).Content
		}
		for _, src := range sources {
			if m.d.nodes++; m.d.nodes > maxNodes { // merges of merges through aliases
				if m.d.nodes == maxNodes+1 {
					m.d.tooLarge = true
					m.d.errorf(src, "document too large or too many aliases")
				}
				return
			}
			src = resolve(src)
			m.d.markKey(src, m.path)
			switch {
			case src.Kind != yaml.MappingNode:
				m.d.errorf(src, "%s: a merge (<<) takes a mapping or a list of mappings", orRoot(m.path))
			case m.visiting[src]:
				m.d.errorf(src, "%s: a merge (<<) takes in the mapping it is part of", orRoot(m.path))
			default:
				m.collect(src, false)
			}
		}
	}
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// yamlFields maps a struct's yaml key names to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: want a list", path)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		if d.elem != nil {
			d.elem(s.Index(i))
		}
		d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s: want a single value, not a %s", path, kindName(n.Kind))
		return
	}
	switch v.Kind() {
	case reflect.String:
		if isNull(n) {
			v.SetString("")
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if err != nil || n.Tag != "!!bool" {
			d.errorf(n, "%s: want true or false, got %q", path, n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || n.Tag != "!!int" || v.OverflowInt(i) {
			d.errorf(n, "%s: want a whole number, got %q", path, n.Value)
			return
		}
		v.SetInt(i)
	default:
		d.errorf(n, "%s: unsupported field type %s", path, v.Type())
	}
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "node"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "config"
	}
	return path
}

// suggest returns ` (did you mean "x"?)` for the known key nearest to a
// mistyped one, or "" when none is close.
func suggest(key string, fields map[string]int) string {
	best, bestDist := "", 3 // at most two edits away
	for name := range fields {
		if d := editDistance(key, name); d < bestDist || d == bestDist && name < best {
			best, bestDist = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
