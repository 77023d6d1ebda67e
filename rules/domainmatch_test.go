package rules

import (
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestDomainMatchULabels: check refuses a domain_match domain written in
// U-labels and asks for A-labels; written so, it must match a domain a
// rule reads in U-labels too: an SMTPUTF8 message's From field (RFC 6532)
// or a HELO name, which reach rules as the client sent them.
func TestDomainMatchULabels(t *testing.T) {
	set := parse(t, `stages: []`)
	req := testRequest()
	req.Conn.HELO = "mx.Bücher.example"
	req.Message = sdk.NewBytesMessage([]sdk.HeaderField{{Name: "From", Value: "Jörg <jörg@Bücher.example>"}}, []byte("From: x\r\n\r\nbody\r\n"))
	env := set.NewEnv(req, nil, Facts{})
	for expr, want := range map[string]bool{
		`domain_match(msg.from, "xn--bcher-kva.example")`:         true,
		`domain_match(conn.helo, "xn--bcher-kva.example")`:        true,
		`domain_match(msg.from, "other.example")`:                 false,
		`domain_match("a@b\u00fccher.example", "bucher.example")`: false,
	} {
		p, probs := set.fns.compile(expr, exprSrc{file: "t", node: &yaml.Node{Value: expr, Line: 1, Column: 1}}, true)
		if len(probs) > 0 || p == nil {
			t.Fatalf("%s: compile: %v", expr, probs)
		}
		if got, err := p.Bool(env); err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", expr, got, err, want)
		}
	}
}
