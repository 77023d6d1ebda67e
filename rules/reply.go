package rules

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Reply is a rule's SMTP reply: "554 5.7.1 text {{expr}}".
type Reply struct {
	Code     int    // 4xx or 5xx, matching the action
	Enhanced string // RFC 3463 status code, class matching Code
	Text     *Template
}

// Template is text with {{expr}} holes, each compiled at load.
type Template struct {
	parts []tplPart
}

type tplPart struct {
	lit  string
	prog *Program
}

// Render fills the holes from env. A value can never start a new reply
// line or header field (RFC 5321 4.2, RFC 5322 2.2): LF becomes a space,
// and CR, NUL and the other control characters but tab are dropped (a
// decoded Subject may carry any of them).
func (t *Template) Render(env *Env) (string, error) {
	if t == nil {
		return "", nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.prog == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := p.prog.Eval(env)
		if err != nil {
			return "", err
		}
		if v != nil {
			fmt.Fprint(&b, v)
		}
	}
	return oneLine(b.String()), nil
}

// oneLine is s as one line of text: see Render.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return ' '
		case isControl(r):
			return -1
		}
		return r
	}, s)
}

// Static returns the template's text when it has no holes.
func (t *Template) Static() (string, bool) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.prog != nil {
			return "", false
		}
		b.WriteString(p.lit)
	}
	return b.String(), true
}

// compileTemplate splits s at {{ }} and compiles every hole. offset is
// where s starts inside the scalar node (after a reply's code).
func (f *funcs) compileTemplate(s string, where exprSrc, offset int) (*Template, Problems) {
	t := &Template{}
	var probs Problems
	runes := 0 // rune offset of s[i:] inside the scalar
	for len(s) > 0 {
		i := strings.Index(s, "{{")
		if i < 0 {
			t.parts = append(t.parts, tplPart{lit: s})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tplPart{lit: s[:i]})
		}
		runes += len([]rune(s[:i]))
		j := holeEnd(s[i+2:])
		if j < 0 {
			probs = append(probs, Problem{where.pos(1, offset+runes), "unclosed {{ in template"})
			break
		}
		src := s[i+2 : i+2+j]
		w := where
		w.shift = offset + runes + 2
		if strings.TrimSpace(src) == "" {
			probs = append(probs, Problem{w.pos(1, 0), "empty {{ }} in template"})
		} else if p, ps := f.compile(src, w, false); p != nil {
			t.parts = append(t.parts, tplPart{prog: p})
			probs = append(probs, ps...)
			if kind := nonText(p); kind != "" {
				probs = append(probs, Problem{w.pos(1, 0), fmt.Sprintf("{{%s}} is %s, not text", strings.TrimSpace(src), kind)})
			}
		} else {
			probs = append(probs, ps...)
		}
		runes += len([]rune(s[i : i+4+j]))
		s = s[i+4+j:]
	}
	return t, probs
}

// nonText names the kind of value a template hole yields when it has no
// sensible text: fmt would print a function's address or Go syntax for a
// struct, map or list. "" when the value is text, a number, a bool or
// known only at run time.
func nonText(p *Program) string {
	t := p.prog.Node().Type()
	if t == nil {
		return ""
	}
	switch t.Kind() {
	case reflect.Func:
		return "a function (call it)"
	case reflect.Struct, reflect.Map:
		return "a record (use one of its fields)"
	case reflect.Slice, reflect.Array:
		return "a list (use join())"
	case reflect.Chan, reflect.UnsafePointer:
		return "not printable"
	}
	return ""
}

// holeEnd is the index of the "}}" that closes a template hole whose
// expression starts s, skipping string literals (expr's "...", '...' with
// backslash escapes and `...`), so that {{ "}}" }} is one hole; -1 if none.
func holeEnd(s string) int {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == '\\' && quote != '`':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			return i
		}
	}
	return -1
}

var (
	replyRe    = regexp.MustCompile(`^(\d{3})(?:[ ]+(.*))?$`)
	enhancedRe = regexp.MustCompile(`^([245])\.(\d{1,3})\.(\d{1,3})$`)
	looksCode  = regexp.MustCompile(`^\d[\d.]*$`)
)

// compileReply parses "CODE [X.Y.Z] text" for action (reject: 5xx,
// tempfail: 4xx; RFC 5321 4.2.1) with an optional RFC 3463 code whose
// class must be the reply's.
func (f *funcs) compileReply(n *yaml.Node, where exprSrc, action string) (*Reply, Problems) {
	start := where.pos(1, 0)
	m := replyRe.FindStringSubmatch(strings.TrimRight(n.Value, " "))
	if m == nil || strings.ContainsAny(n.Value, "\r\n") {
		return nil, Problems{{start, fmt.Sprintf("malformed reply %q: want \"CODE [X.Y.Z] text\", e.g. \"550 5.7.1 Rejected\"", n.Value)}}
	}
	code, _ := strconv.Atoi(m[1])
	want := map[string]int{ActionReject: 5, ActionTempfail: 4}[action]
	if code/100 != want {
		return nil, Problems{{start, fmt.Sprintf("reply code %d does not fit action %s (want %dxx)", code, action, want)}}
	}
	r := &Reply{Code: code, Enhanced: fmt.Sprintf("%d.7.1", want)}
	rest, off := m[2], 4
	if tok, after, _ := strings.Cut(rest, " "); looksCode.MatchString(tok) {
		em := enhancedRe.FindStringSubmatch(tok)
		switch {
		case em == nil:
			return nil, Problems{{where.pos(1, off), fmt.Sprintf("bad enhanced status code %q: want CLASS.SUBJECT.DETAIL (RFC 3463)", tok)}}
		case em[1] != m[1][:1]:
			return nil, Problems{{where.pos(1, off), fmt.Sprintf("enhanced status code %s does not fit reply code %d", tok, code)}}
		}
		r.Enhanced = tok
		rest, off = strings.TrimLeft(after, " "), off+len(tok)+1+len(after)-len(strings.TrimLeft(after, " "))
	}
	if rest == "" {
		rest = defaultText(action)
	}
	t, probs := f.compileTemplate(rest, where, off)
	r.Text = t
	return r, probs
}

func defaultText(action string) string {
	if action == ActionTempfail {
		return "Try again later"
	}
	return "Message rejected by policy"
}
