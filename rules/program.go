package rules

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/cfgval"
)

// Program is one compiled expression with what it refers to.
type Program struct {
	Source string
	Pos    Pos // where the expression starts

	prog    *vm.Program
	phase   sdk.Phase   // earliest phase at which its conn/mail/rcpt/msg facts are known
	results []resultRef // results.<stage> references
	rcptAt  *Pos        // where it first reads rcpt, which only the rcpt phase has; nil if it does not
	conn    connUse     // the conn fields it may read
	// anyResult: it may read any stage's result (results[k], a function
	// of results), besides those it names in results.
	anyResult bool
}

// connUse is what an expression may read of conn: the fields it names, or
// all of them when it uses conn as a whole (conn[k], a function of it).
type connUse struct {
	fields map[string]bool
	whole  bool
}

func (u connUse) reads(field string) bool { return u.whole || u.fields[field] }

type resultRef struct {
	stage string
	pos   Pos
}

// Eval runs the program in env.
func (p *Program) Eval(env *Env) (any, error) {
	m := vms.Get().(*vm.VM)
	defer vms.Put(m)
	return m.Run(p.prog, env)
}

// vms reuses expr's VMs (one is not safe for concurrent use); expr.Run
// would allocate a new one for every evaluation.
var vms = sync.Pool{New: func() any { return new(vm.VM) }}

// Bool runs a program compiled with AsBool.
func (p *Program) Bool(env *Env) (bool, error) {
	v, err := p.Eval(env)
	if err != nil {
		return false, err
	}
	b, _ := v.(bool)
	return b, nil
}

// connPhase is when each conn field becomes known.
var connPhase = map[string]sdk.Phase{
	"ip": sdk.PhaseConnect, "port": sdk.PhaseConnect, "hostname": sdk.PhaseConnect, "hostname_error": sdk.PhaseConnect, "tls": sdk.PhaseConnect,
	"listener": sdk.PhaseConnect, "trusted": sdk.PhaseConnect, "country": sdk.PhaseConnect,
	"pregreet": sdk.PhaseConnect, "helo": sdk.PhaseHelo, "authenticated": sdk.PhaseMail, "user": sdk.PhaseMail,
}

// identPhase is when each top-level name becomes known.
var identPhase = map[string]sdk.Phase{
	"conn": sdk.PhaseMail, "mail": sdk.PhaseMail, "rcpt": sdk.PhaseRcpt, "rcpts": sdk.PhaseData,
	"msg": sdk.PhaseData, "header": sdk.PhaseData,
}

// exprSrc maps offsets inside an expression to positions in the rule file.
type exprSrc struct {
	file  string
	node  *yaml.Node
	lines []string // the file's lines, to find a block scalar's indentation; may be nil
	shift int      // offset of the expression inside the scalar (reply templates)
}

// pos converts a 1-based line and 0-based rune column inside the scalar's
// value into a 1-based file position.
func (s exprSrc) pos(line, col0 int) Pos {
	n := s.node
	if line == 1 {
		col0 += s.shift
	}
	if l, c, ok := scalarPos(n, s.lines, valueIndex(n.Value, s.shift, line, col0)); ok {
		return Pos{s.file, l, c}
	}
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		l := n.Line + line
		indent := n.Column + 1
		if n.Line < len(s.lines) { // the first content line sets the indentation
			t := s.lines[n.Line]
			indent = len(t) - len(strings.TrimLeft(t, " ")) + 1
		}
		return Pos{s.file, l, indent + col0}
	case n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 && line == 1:
		return Pos{s.file, n.Line, n.Column + 1 + col0 + escapes(n, col0)}
	case line == 1:
		return Pos{s.file, n.Line, n.Column + col0}
	}
	return Pos{s.file, n.Line + line - 1, 1 + col0}
}

// valueIndex is the rune index inside value of the expression's 1-based
// line and 0-based column (line 1's already counted from shift, where the
// expression starts in the value).
func valueIndex(value string, shift, line, col0 int) int {
	if line == 1 {
		return col0
	}
	rs := []rune(value)
	for i := shift; i < len(rs); i++ {
		if rs[i] == '\n' {
			if line--; line == 1 {
				return i + 1 + col0
			}
		}
	}
	return len(rs)
}

// escapes counts the extra source characters quoting added before col0.
func escapes(n *yaml.Node, col0 int) int {
	extra := 0
	for i, r := range []rune(n.Value) {
		if i >= col0 {
			break
		}
		switch {
		case n.Style&yaml.SingleQuotedStyle != 0 && r == '\'':
			extra++
		case n.Style&yaml.DoubleQuotedStyle != 0 && (r == '"' || r == '\\'):
			extra++
		}
	}
	return extra
}

// at converts a rune offset of the expression source into a file position.
func (s exprSrc) at(src string, from int) Pos {
	line, col := 1, 0
	for i, r := range []rune(src) {
		if i >= from {
			break
		}
		if r == '\n' {
			line, col = line+1, 0
		} else {
			col++
		}
	}
	return s.pos(line, col)
}

// compile compiles one expression. asBool requires a boolean result.
func (f *funcs) compile(src string, where exprSrc, asBool bool) (*Program, Problems) {
	opts := f.options()
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	p := &Program{Source: src, Pos: where.pos(1, 0)}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, Problems{compileProblem(err, where, p.Pos, asBool)}
	}
	p.prog = prog
	var probs Problems
	for _, ap := range f.precompile(prog.Node()) {
		probs = append(probs, Problem{where.at(src, ap.from), ap.msg})
	}
	analyse(p, prog.Node(), func(from int) Pos { return where.at(src, from) })
	return p, probs
}

func compileProblem(err error, where exprSrc, start Pos, asBool bool) Problem {
	var fe *file.Error
	if errors.As(err, &fe) {
		msg := typeNames.Replace(strings.TrimSpace(fe.Message))
		return Problem{where.pos(max(fe.Line, 1), fe.Column), msg + didYouMean(msg)}
	}
	msg := err.Error()
	if asBool && strings.HasPrefix(msg, "expected bool") {
		msg = "condition must be a boolean: " + msg
	}
	return Problem{start, msg}
}

// didYouMean is " (did you mean "hostname"?)" for a misspelt field or
// name in msg ("conn has no field hostnme", "unknown name con"), "" when
// nothing known is near.
func didYouMean(msg string) string {
	var typ reflect.Type
	var name string
	if owner, field, ok := strings.Cut(msg, " has no field "); ok {
		typ, name = fieldOwners[owner], field
	} else if n, ok := strings.CutPrefix(msg, "unknown name "); ok {
		typ, name = reflect.TypeFor[Env](), n
	}
	if typ == nil {
		return ""
	}
	known := exprNames(typ)
	if typ == reflect.TypeFor[Env]() {
		known = append(known, funcNames...)
	}
	if guess := cfgval.Nearest(name, known); guess != "" {
		return fmt.Sprintf(" (did you mean %q?)", guess)
	}
	return ""
}

// fieldOwners are the types behind the names typeNames gives them.
var fieldOwners = map[string]reflect.Type{
	"conn": reflect.TypeFor[Conn](), "mail": reflect.TypeFor[Mail](), "msg": reflect.TypeFor[Msg](),
	"results.<stage>": reflect.TypeFor[StageResult](),
}

// funcNames are the functions rules may call (funcs.options).
var funcNames = []string{"cidr", "domain_match", "regex", "has_tag"}

// exprNames are the names expr knows typ's fields by (their expr tags).
func exprNames(typ reflect.Type) []string {
	var out []string
	for f := range typ.Fields() {
		if n := f.Tag.Get("expr"); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// typeNames turns the Go types in expr's messages into the names rule
// authors write.
var typeNames = strings.NewReplacer(
	"type rules.Conn", "conn", "type rules.Mail", "mail", "type rules.Msg", "msg",
	"type rules.StageResult", "results.<stage>", "type rules.Env", "the environment",
	"rules.StageResult", "results.<stage>", "rules.Conn", "conn", "rules.Mail", "mail", "rules.Msg", "msg",
)

// analyse finds the phase p's expression needs, its results references,
// where it first reads rcpt and what it reads of conn and of results.
func analyse(p *Program, node ast.Node, pos func(int) Pos) {
	phase := sdk.PhaseConnect
	var refs []resultRef
	var rcptAt *Pos
	conn := connUse{fields: map[string]bool{}}
	anyResult := false
	inMember := map[ast.Node]bool{}
	walk(node, func(n ast.Node) {
		m, ok := n.(*ast.MemberNode)
		if !ok {
			return
		}
		id, ok := m.Node.(*ast.IdentifierNode)
		if !ok {
			return
		}
		prop, isStr := m.Property.(*ast.StringNode)
		switch {
		case id.Value == "results" && isStr:
			refs = append(refs, resultRef{prop.Value, pos(m.Location().From)})
		case id.Value == "results":
			phase = sdk.PhaseData // a computed stage name: only known when all have run
			anyResult = true
		case id.Value == "conn" && isStr:
			phase = laterPhase(phase, connPhase[prop.Value])
			conn.fields[prop.Value] = true
		default:
			return
		}
		inMember[id] = true
	})
	walk(node, func(n ast.Node) {
		if id, ok := n.(*ast.IdentifierNode); ok && !inMember[n] {
			if p, ok := identPhase[id.Value]; ok {
				phase = laterPhase(phase, p)
			}
			if id.Value == "rcpt" && rcptAt == nil {
				at := pos(id.Location().From)
				rcptAt = &at
			}
			// conn as a whole (conn[k], a function of it): it may read
			// any field.
			conn.whole = conn.whole || id.Value == "conn"
			anyResult = anyResult || id.Value == "results"
		}
	})
	p.phase, p.results, p.rcptAt, p.conn, p.anyResult = phase, refs, rcptAt, conn, anyResult
}

// readsResult reports whether p may read the result of the stage named
// stage.
func (p *Program) readsResult(stage string) bool {
	return p.anyResult || slices.ContainsFunc(p.results, func(r resultRef) bool { return r.stage == stage })
}

// describe names a YAML node kind for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.Tag == "!!null" {
		return "nothing"
	}
	return fmt.Sprintf("%q", n.Value)
}
