package rules

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"golang.org/x/net/idna"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/cfgval"
)

// source is one rule file being parsed.
type source struct {
	name  string
	lines []string
}

func (s *source) at(n *yaml.Node) Pos { return Pos{s.name, n.Line, n.Column} }

func (s *source) expr(n *yaml.Node) exprSrc { return exprSrc{file: s.name, node: n, lines: s.lines} }

// stageSrc and ruleSrc keep the nodes whose expressions are compiled once
// every stage name is known.
type stageSrc struct {
	st   *Stage
	src  *source
	when *yaml.Node
	bad  bool // its entry had a problem
}

type ruleSrc struct {
	r                     *Rule
	src                   *source
	when, reply, hdrValue *yaml.Node
	defaultTag            bool // tag without header or subject_prefix
	bad                   bool // its entry had a problem
}

var nameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// fields walks a mapping, reporting unknown and repeated keys, and calls
// set for each known key.
func (l *loader) fields(src *source, n *yaml.Node, what string, known []string, set func(key string, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		l.problem(src.at(n), "%s: want a mapping, got %s", what, describe(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !contains(known, k.Value):
			l.problem(src.at(k), "%s: unknown key %q (known: %s)", what, k.Value, strings.Join(known, ", "))
		case seen[k.Value]:
			l.problem(src.at(k), "%s: key %q given twice", what, k.Value)
		default:
			seen[k.Value] = true
			set(k.Value, v)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// str returns a scalar's value, or reports that v is not a string.
func (l *loader) str(src *source, v *yaml.Node, what string) (string, bool) {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		l.problem(src.at(v), "%s: want a string, got %s", what, describe(v))
		return "", false
	}
	return v.Value, true
}

// nonEmpty reports whether v is a non-blank string, reporting it if not.
func (l *loader) nonEmpty(src *source, v *yaml.Node, what string) bool {
	s, ok := l.str(src, v, what)
	if ok && strings.TrimSpace(s) == "" {
		l.problem(src.at(v), "%s is empty (leave the key out to match always)", what)
		return false
	}
	return ok
}

// parseFile parses the top level of one rule file.
func (l *loader) parseFile(src *source, doc *yaml.Node, dir string) {
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return
		}
		doc = doc.Content[0]
	}
	if doc.Kind == 0 || doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return // an empty file
	}
	var includes *yaml.Node
	l.fields(src, doc, "rule file", []string{"include", "stages", "rules"}, func(k string, v *yaml.Node) {
		switch k {
		case "include":
			includes = v
		case "stages":
			l.parseStages(src, v)
		case "rules":
			l.parseRules(src, v)
		}
	})
	if includes != nil {
		l.includeNode(src, includes, dir)
	}
}

func (l *loader) list(src *source, n *yaml.Node, what string) []*yaml.Node {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l.problem(src.at(n), "%s: want a list, got %s", what, describe(n))
		return nil
	}
	return n.Content
}

func (l *loader) parseStages(src *source, n *yaml.Node) {
	for _, item := range l.list(src, n, "stages") {
		ss := stageSrc{st: &Stage{Timeout: DefaultTimeout, OnError: OnErrorTempfail, Pos: src.at(item), PluginPos: src.at(item)}, src: src}
		before := len(l.probs)
		keys := map[string]bool{}
		l.fields(src, item, "stage", []string{"name", "plugin", "timeout", "on_error", "when", "config"}, func(k string, v *yaml.Node) {
			keys[k] = true
			l.stageField(ss.st, &ss, src, k, v)
		})
		if item.Kind != yaml.MappingNode {
			continue
		}
		if !keys["name"] {
			l.problem(ss.st.Pos, "stage without a name")
		}
		if !keys["plugin"] {
			l.problem(ss.st.Pos, "stage %q without a plugin", ss.st.Name)
		}
		ss.bad = len(l.probs) > before
		l.stages = append(l.stages, ss)
	}
}

func (l *loader) stageField(st *Stage, ss *stageSrc, src *source, k string, v *yaml.Node) {
	switch k {
	case "name":
		if s, ok := l.str(src, v, "name"); ok {
			if !nameRe.MatchString(s) {
				l.problem(src.at(v), "stage name %q: use letters, digits and _ (it is results.%s in rules)", s, s)
			}
			st.Name = s
		}
	case "plugin":
		st.Plugin, _ = l.str(src, v, "plugin")
		st.PluginPos = src.at(v)
	case "timeout":
		if s, ok := l.str(src, v, "timeout"); ok {
			d, err := cfgval.Duration(s) // Go syntax plus d for days, as every duration of the config
			if err != nil || d <= 0 {
				l.problem(src.at(v), "bad timeout %q: want a positive duration like 2s or 500ms", s)
			} else {
				st.Timeout = d
			}
		}
	case "on_error":
		if s, ok := l.str(src, v, "on_error"); ok {
			if s != OnErrorContinue && s != OnErrorTempfail && s != OnErrorReject {
				l.problem(src.at(v), "bad on_error %q: want continue, tempfail or reject", s)
			} else {
				st.OnError = s
			}
		}
	case "when":
		if l.nonEmpty(src, v, "when") {
			ss.when = v
		}
	case "config":
		if v.Kind != yaml.MappingNode {
			l.problem(src.at(v), "config: want a mapping, got %s", describe(v))
			return
		}
		if err := v.Decode(&st.Config); err != nil {
			l.problem(src.at(v), "config: %v", err)
		}
	}
}

var ruleKeys = []string{"name", "when", "action", "reply", "header", "subject_prefix", "recipients", "phase"}

func (l *loader) parseRules(src *source, n *yaml.Node) {
	for _, item := range l.list(src, n, "rules") {
		rs := ruleSrc{r: &Rule{Pos: src.at(item)}, src: src}
		before := len(l.probs)
		keys := map[string]*yaml.Node{}
		l.fields(src, item, "rule", ruleKeys, func(k string, v *yaml.Node) {
			keys[k] = v
			l.ruleField(&rs, src, k, v)
		})
		if item.Kind != yaml.MappingNode {
			continue
		}
		if keys["name"] == nil {
			l.problem(rs.r.Pos, "rule without a name")
		}
		l.checkActionKeys(&rs, keys)
		rs.bad = len(l.probs) > before
		l.rules = append(l.rules, rs)
	}
}

func (l *loader) ruleField(rs *ruleSrc, src *source, k string, v *yaml.Node) {
	r := rs.r
	switch k {
	case "name":
		if s, ok := l.str(src, v, "name"); ok {
			// The name is in logs, in scan's report, in tags ("tag:<name>")
			// and in the value of a bare tag's header field.
			if strings.TrimSpace(s) == "" || strings.IndexFunc(s, isControl) >= 0 {
				l.problem(src.at(v), "rule name %q: want a non-empty name on one line", s)
			}
			r.Name = s
		}
	case "when":
		if l.nonEmpty(src, v, "when") {
			rs.when = v
		}
	case "action":
		if s, ok := l.str(src, v, "action"); ok {
			if _, known := minPhase[s]; !known {
				l.problem(src.at(v), "bad action %q: want accept, reject, tempfail, discard, quarantine, tag, add_header, redirect, learn_spam or learn_ham", s)
			} else {
				r.Action = s
			}
		}
	case "reply":
		if _, ok := l.str(src, v, "reply"); ok {
			rs.reply = v
		}
	case "header":
		if v.Kind == yaml.MappingNode {
			// Even an empty mapping is a header, so it is reported
			// as nameless instead of silently adding nothing.
			r.Header = &HeaderSpec{}
		}
		l.fields(src, v, "header", []string{"name", "value"}, func(hk string, hv *yaml.Node) {
			if hk == "name" {
				r.Header.Name, _ = l.str(src, hv, "header name")
				if !validFieldName(r.Header.Name) {
					l.problem(src.at(hv), "bad header name %q (RFC 5322 2.2: printable ASCII without colon)", r.Header.Name)
				}
			} else if _, ok := l.str(src, hv, "header value"); ok {
				rs.hdrValue = hv
			}
		})
	case "subject_prefix":
		r.SubjectPrefix, _ = l.str(src, v, "subject_prefix")
		if strings.IndexFunc(r.SubjectPrefix, isControl) >= 0 {
			l.problem(src.at(v), "subject_prefix must be one line")
		}
	case "recipients":
		for _, a := range l.list(src, v, "recipients") {
			if s, ok := l.str(src, a, "recipient"); ok {
				addr, ok := redirectAddress(s)
				if !ok {
					l.problem(src.at(a), "bad recipient %q: want local@domain", s)
				}
				r.Recipients = append(r.Recipients, addr)
			}
		}
	case "phase":
		if s, ok := l.str(src, v, "phase"); ok {
			if phaseIndex(sdk.Phase(s)) < 0 {
				l.problem(src.at(v), "bad phase %q: want connect, helo, mail, rcpt or data", s)
			} else {
				r.fixedPhase, r.phasePos = sdk.Phase(s), src.at(v)
			}
		}
	}
}

// isControl reports a character that has no place in a reply line, a
// header field or a name: C0 controls (CR and LF included) but tab, DEL.
func isControl(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }

// validMailbox reports whether s is a mailbox a redirect can deliver to
// (RFC 5321 4.1.2): a local part (dot-atom or quoted string, UTF-8 allowed
// as RFC 6531 does), "@", and a domain of LDH labels or an address literal.
func validMailbox(s string) bool {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || len(s) > 254 || strings.IndexFunc(s, isControl) >= 0 {
		return false
	}
	return validLocalPart(s[:i]) && validDomain(s[i+1:])
}

// redirectAddress is s, a redirect recipient, as the queue and delivery
// need it: a domain beyond ASCII in its lower-case A-label form (RFC 5890,
// UTS 46 mapping), as the session makes the recipients it accepts. Left in
// Unicode it missed the route written for it (routes match A-labels) and
// went out raw in RCPT TO without SMTPUTF8 (RFC 6531 3.2). ok is false
// when s is no mailbox or its domain no IDNA name.
func redirectAddress(s string) (addr string, ok bool) {
	if !validMailbox(s) {
		return s, false
	}
	i := strings.LastIndexByte(s, '@')
	d := s[i+1:]
	if isASCII(d) {
		return s, true
	}
	if !utf8.ValidString(d) {
		return s, false // idna would take a stray byte for U+FFFD
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return s, false
	}
	return s[:i+1] + strings.ToLower(a), true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func validLocalPart(l string) bool {
	if len(l) > 64 { // RFC 5321 4.5.3.1.1
		return false
	}
	if len(l) >= 2 && l[0] == '"' && l[len(l)-1] == '"' {
		q := l[1 : len(l)-1]
		for i := 0; i < len(q); i++ {
			switch {
			case q[i] == '\\' && i+1 < len(q):
				i++
			case q[i] == '"' || q[i] == '\\':
				return false
			}
		}
		return true
	}
	for _, atom := range strings.Split(l, ".") {
		if atom == "" || strings.ContainsAny(atom, " \t\"(),:;<>@[\\]") {
			return false
		}
	}
	return true
}

func validDomain(d string) bool {
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") {
		lit := d[1 : len(d)-1]
		if v6, ok := strings.CutPrefix(lit, "IPv6:"); ok {
			a, err := netip.ParseAddr(v6)
			return err == nil && a.Is6() && a.Zone() == ""
		}
		a, err := netip.ParseAddr(lit)
		return err == nil && a.Is4()
	}
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c >= 0x80) {
				return false
			}
		}
	}
	return true
}

// validFieldName is RFC 5322 2.2 ftext: printable US-ASCII except colon.
func validFieldName(s string) bool { return sdk.ValidFieldName(s) }

// checkActionKeys reports missing and misplaced keys for the rule's action.
func (l *loader) checkActionKeys(rs *ruleSrc, keys map[string]*yaml.Node) {
	r, src := rs.r, rs.src
	if _, ok := keys["action"]; !ok {
		l.problem(r.Pos, "rule %q without an action", r.Name)
		return
	}
	if r.Action == "" {
		return // a bad action was reported
	}
	allowed := map[string][]string{
		ActionReject: {"reply"}, ActionTempfail: {"reply"},
		ActionTag: {"header", "subject_prefix"}, ActionAddHeader: {"header"}, ActionRedirect: {"recipients"},
	}[r.Action]
	for _, k := range []string{"reply", "header", "subject_prefix", "recipients"} {
		if v, ok := keys[k]; ok && !contains(allowed, k) {
			l.problem(src.at(v), "%s is not used by action %s", k, r.Action)
		}
	}
	switch {
	case r.Action == ActionAddHeader && r.Header == nil:
		l.problem(r.Pos, "add_header needs header: {name, value}")
	case r.Action == ActionTag && r.Header == nil && r.SubjectPrefix == "" && keys["header"] == nil:
		// A bare tag marks the message with the rule's name.
		r.Header = &HeaderSpec{Name: DefaultTagHeader}
		rs.defaultTag = true
	case r.Action == ActionRedirect && len(r.Recipients) == 0:
		l.problem(r.Pos, "redirect needs recipients: [...]")
	}
	if r.Header != nil && r.Header.Name == "" {
		l.problem(src.at(keys["header"]), "header without a name")
	}
}

// yamlProblem turns a YAML syntax error into a Problem at its line.
func yamlProblem(file string, data []byte, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if !yamlLineRe.MatchString(msg) {
		// The reader's errors (bytes that are not UTF-8, control
		// characters) name no line: find the byte, which a file saved in
		// Latin-1 or Shift_JIS has far from line 1.
		if line, col, ok := YAMLBadByte(data); ok {
			return Problem{Pos{file, line, col}, "YAML: " + msg}
		}
	}
	line := 1
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimPrefix(msg, m[0])
		line = YAMLErrorLine(data, line, msg)
	}
	return Problem{Pos{file, line, 1}, "YAML: " + msg}
}

// YAMLErrorLine finds the line of a YAML syntax error that the parser placed at
// the start of the enclosing block (yaml.v3 reports "did not find expected
// '-' indicator" at the sequence's first line, however far down the bad
// line is): the first line at which a prefix of data fails with the same
// message, found by halving (a few parses, only after an error). reported
// stands when the search finds nothing later. The config's reader uses it
// too (core/config).
func YAMLErrorLine(data []byte, reported int, msg string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	fails := func(k int) bool {
		var n yaml.Node
		err := yaml.Unmarshal(bytes.Join(lines[:k], nil), &n)
		return err != nil && strings.HasSuffix(err.Error(), ": "+msg)
	}
	lo, hi := 1, len(lines)
	if !fails(hi) {
		return reported
	}
	for lo < hi {
		if mid := (lo + hi) / 2; fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return max(reported, hi)
}

var yamlLineRe = regexp.MustCompile(`^line (\d+): `)

// YAMLBadByte is the line and column (in characters, as the YAML parser
// counts them) of the first character YAML refuses (YAML 1.2 5.1:
// c-printable) or byte that is not UTF-8: the reader's errors name no
// line. The config's reader uses it too (core/config).
func YAMLBadByte(data []byte) (line, col int, ok bool) {
	if bytes.HasPrefix(data, []byte{0xFE, 0xFF}) || bytes.HasPrefix(data, []byte{0xFF, 0xFE}) {
		return 0, 0, false // UTF-16: the reader converted it; positions would not match
	}
	line, col = 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, col, true
		case r == '\n':
			line, col = line+1, 0
		case r == 0xFEFF && i == 0:
			col--
		case !(r == '\t' || r == '\r' || r >= 0x20 && r <= 0x7E || r == 0x85 ||
			r >= 0xA0 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000):
			return line, col, true
		}
		i += size
		col++
	}
	return 0, 0, false
}

func (l *loader) problem(p Pos, format string, args ...any) {
	l.probs = append(l.probs, Problem{p, fmt.Sprintf(format, args...)})
}
