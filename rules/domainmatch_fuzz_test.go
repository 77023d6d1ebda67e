package rules

import (
	"testing"

	"github.com/expr-lang/expr/ast"
	"golang.org/x/net/idna"
)

func matchDomain(t *testing.T, s, want string) bool {
	t.Helper()
	v, err := domainMatch(s, want)
	if err != nil {
		t.Fatalf("domain_match(%q, %q): %v", s, want, err)
	}
	return v.(bool)
}

// FuzzDomainMatch: a domain check lets through (checkDomains) matches
// itself, an address at it and its subdomains; a domain read in U-labels
// gets the verdict its A-labels get; and ASCII case never matters.
func FuzzDomainMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"jörg@Bücher.example", "xn--bcher-kva.example"},
		{"mx.bücher.example.", "bücher.example"},
		{"<a@EXAMPLE.test>", "example.test."},
		{"a@b@c.example", "c.example"},
		{"ＥＸＡＭＰＬＥ.test", "example.test"},
		{"a@xn--bcher-kva.example", "*.example"},
		{"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, s, want string) {
		call := &ast.CallNode{Arguments: []ast.Node{&ast.StringNode{Value: "x"}, &ast.StringNode{Value: want}}}
		if len(checkDomains(call)) == 0 {
			d := normDomain(want)
			for _, in := range []string{want, "u@" + d, "<u@" + d + ">", "mx." + d} {
				if !matchDomain(t, in, want) {
					t.Fatalf("check takes %q, but domain_match(%q, %q) is false", want, in, want)
				}
			}
		}
		got := matchDomain(t, s, want)
		if a, err := idna.Lookup.ToASCII(normDomain(s)); err == nil && isASCII(want) {
			if ga := matchDomain(t, a, want); ga != got {
				t.Fatalf("domain_match(%q, %q) = %v, but %v for its A-labels %q", s, want, got, ga, a)
			}
		}
		if gu := matchDomain(t, asciiUpper(s), want); gu != got {
			t.Fatalf("domain_match(%q, %q) = %v, but %v in upper case", s, want, got, gu)
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
