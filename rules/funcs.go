package rules

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"golang.org/x/net/idna"

	"github.com/portcullis-mta/portcullis/sdk/cfgval"
)

// funcs holds what the rule functions precompile at load: the patterns of
// regex() and the prefixes of cidr(). The maps are written only while a Set
// loads and read-only afterwards, so evaluation needs no lock.
type funcs struct {
	re       map[string]*regexp.Regexp
	prefixes map[string]netip.Prefix
}

func newFuncs() *funcs {
	return &funcs{re: map[string]*regexp.Regexp{}, prefixes: map[string]netip.Prefix{}}
}

// options are the expr options shared by every expression of a set.
func (f *funcs) options() []expr.Option {
	return []expr.Option{
		expr.Env(Env{}),
		expr.Function("cidr", f.cidr, new(func(string, ...string) bool)),
		expr.Function("domain_match", domainMatch, new(func(string, ...string) bool)),
		expr.Function("regex", f.regex, new(func(string, string) bool)),
		expr.Function("has_tag", func(p ...any) (any, error) {
			return hasTag(p[0].(StageResult), p[1].(string)), nil
		}, new(func(StageResult, string) bool)),
	}
}

// cidr(ip, prefix...) reports whether ip is inside any prefix (a CIDR or
// a bare address). An unparsable ip is inside nothing.
func (f *funcs) cidr(p ...any) (any, error) {
	ip, err := netip.ParseAddr(strings.Trim(p[0].(string), "[]"))
	if err != nil {
		return false, nil
	}
	ip = ip.Unmap().WithZone("") // a link-local address's zone is no part of its network
	for _, a := range p[1:] {
		s := a.(string)
		pfx, ok := f.prefixes[s]
		if !ok {
			if pfx, err = cfgval.Network(s); err != nil {
				continue
			}
		}
		if pfx.Contains(ip) {
			return true, nil
		}
	}
	return false, nil
}

// domainMatch is domain_match(addr_or_domain, domain...): true when the
// domain of the address (after the last "@") is one of the domains or a
// subdomain of one. Comparison ignores case and a trailing dot. A domain
// read in U-labels (an SMTPUTF8 message's From field, RFC 6532, or a HELO
// name, as the client sent them) is compared in A-labels (RFC 5890), the
// form check asks domains to be written in, as addresses have it.
func domainMatch(p ...any) (any, error) {
	d := normDomain(p[0].(string))
	if !isASCII(d) && utf8.ValidString(d) {
		if a, err := idna.Lookup.ToASCII(d); err == nil {
			// A root dot written as UTS 46 maps it (U+3002 and
			// others) is a '.' only now: trimmed as an ASCII one is.
			d = strings.TrimSuffix(strings.ToLower(a), ".")
		}
	}
	if d == "" {
		return false, nil
	}
	for _, a := range p[1:] {
		want := normDomain(a.(string))
		if want != "" && (d == want || strings.HasSuffix(d, "."+want)) {
			return true, nil
		}
	}
	return false, nil
}

func normDomain(s string) string {
	s = strings.Trim(s, "<> ")
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	return strings.ToLower(strings.TrimSuffix(s, "."))
}

// regex(s, pattern) reports whether pattern (RE2 syntax) matches s.
func (f *funcs) regex(p ...any) (any, error) {
	re, ok := f.re[p[1].(string)]
	if !ok {
		return nil, fmt.Errorf("regex: pattern %q was not compiled at load", p[1])
	}
	return re.MatchString(p[0].(string)), nil
}

// argProblem is a problem in a function argument, at an expression offset.
type argProblem struct {
	from int
	msg  string
}

// precompile checks the constant arguments of regex(), cidr() and
// domain_match() in the tree and compiles the patterns, so a bad one is a
// load error; the pattern of the matches operator must be constant too.
func (f *funcs) precompile(node ast.Node) []argProblem {
	var out []argProblem
	walk(node, func(n ast.Node) {
		if b, ok := n.(*ast.BinaryNode); ok && b.Operator == "matches" {
			if _, ok := b.Right.(*ast.StringNode); !ok {
				// As regex(): a pattern read from the mail may not
				// compile, and the rule's error is a 451 at each retry.
				out = append(out, argProblem{startOf(b.Right), "matches needs a constant pattern string"})
			}
			return
		}
		call, ok := n.(*ast.CallNode)
		if !ok {
			return
		}
		id, ok := call.Callee.(*ast.IdentifierNode)
		if !ok {
			return
		}
		switch id.Value {
		case "regex":
			out = append(out, f.compileRegex(call)...)
		case "cidr":
			out = append(out, f.compileCIDR(call)...)
		case "domain_match":
			out = append(out, checkDomains(call)...)
		}
	})
	return out
}

func (f *funcs) compileRegex(call *ast.CallNode) []argProblem {
	if len(call.Arguments) != 2 {
		return nil // the type checker has already complained
	}
	s, ok := call.Arguments[1].(*ast.StringNode)
	if !ok {
		return []argProblem{{call.Arguments[1].Location().From, "regex pattern must be a constant string"}}
	}
	re, err := regexp.Compile(s.Value)
	if err != nil {
		return []argProblem{{s.Location().From, "bad regex: " + err.Error()}}
	}
	f.re[s.Value] = re
	return nil
}

func (f *funcs) compileCIDR(call *ast.CallNode) []argProblem {
	var out []argProblem
	for _, a := range call.Arguments[min(1, len(call.Arguments)):] {
		s, ok := a.(*ast.StringNode)
		if !ok {
			continue // computed at run time
		}
		p, err := cfgval.Network(s.Value)
		if err != nil {
			out = append(out, argProblem{s.Location().From, fmt.Sprintf("bad network %q in cidr()", s.Value)})
			continue
		}
		f.prefixes[s.Value] = p
	}
	return out
}

// checkDomains refuses a constant domain_match() domain that can never
// match: a wildcard or leading dot, as relay.domains and routes write
// subdomains (domain_match takes them with "example.test" already), a
// domain beyond ASCII (addresses reach rules in A-labels), an empty one.
func checkDomains(call *ast.CallNode) []argProblem {
	var out []argProblem
	for _, a := range call.Arguments[min(1, len(call.Arguments)):] {
		s, ok := a.(*ast.StringNode)
		if !ok {
			continue // computed at run time
		}
		d := normDomain(s.Value)
		var msg string
		switch {
		case d == "" || strings.ContainsAny(d, " \t"):
			// A blank left inside (" ." trims to a blank) is in no domain.
			msg = fmt.Sprintf("domain_match: %q is no domain and never matches", s.Value)
		case strings.HasPrefix(d, "*") || strings.HasPrefix(d, "."):
			msg = fmt.Sprintf("domain_match: %q never matches: write %q (its subdomains match too)", s.Value, strings.TrimLeft(d, "*."))
		case !isASCII(d):
			if a, err := idna.Lookup.ToASCII(d); err == nil {
				msg = fmt.Sprintf("domain_match: %q never matches: write it in A-labels, %q", s.Value, a)
			} else {
				msg = fmt.Sprintf("domain_match: %q never matches: write it in A-labels (xn--...)", s.Value)
			}
		default:
			continue
		}
		out = append(out, argProblem{s.Location().From, msg})
	}
	return out
}

// startOf is the offset of the leftmost node of the tree (a binary node's
// own location is its operator's).
func startOf(node ast.Node) int {
	from := node.Location().From
	walk(node, func(n ast.Node) { from = min(from, n.Location().From) })
	return from
}

// walk calls fn for every node of the tree.
func walk(node ast.Node, fn func(ast.Node)) {
	ast.Walk(&node, visitor(fn))
}

type visitor func(ast.Node)

func (v visitor) Visit(n *ast.Node) { v(*n) }
