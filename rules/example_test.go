package rules_test

import (
	"fmt"

	"github.com/portcullis-mta/portcullis/rules"
	"github.com/portcullis-mta/portcullis/sdk"
)

func Example() {
	set, err := rules.Parse("mx.yaml", []byte(`
stages:
  - {name: dnsbl, plugin: dnsbl, timeout: 2s, on_error: continue, when: '!conn.trusted'}
rules:
  - name: listed
    when: 'results.dnsbl.verdict == "fail"'
    action: reject
    reply: '554 5.7.1 [{{conn.ip}}] listed at {{results.dnsbl.attrs.zone}}'
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	// The plugin says it runs at connect, so the rule is decided there.
	if err := set.Bind(map[string][]sdk.Phase{"dnsbl": {sdk.PhaseConnect}}); err != nil {
		fmt.Println(err)
		return
	}
	req := &sdk.Request{Phase: sdk.PhaseConnect, Conn: sdk.Conn{IP: "192.0.2.7"}}
	res := map[string]*sdk.Result{"dnsbl": {Verdict: sdk.VerdictFail, Attrs: map[string]string{"zone": "zen.example"}}}
	env := set.NewEnv(req, res, rules.Facts{})
	rule, _ := set.Decide(sdk.PhaseConnect, env)
	code, enhanced, text, _ := rule.RenderReply(sdk.PhaseConnect, env)
	fmt.Println(rule.Name, rule.Phase, rule.Action)
	fmt.Println(code, enhanced, text)

	_, err = rules.Parse("bad.yaml", []byte("rules: [{name: x, when: 'results.spf.verdict == 1', action: reject}]"))
	fmt.Println(err)
	// Output:
	// listed connect reject
	// 554 5.7.1 [192.0.2.7] listed at zen.example
	// bad.yaml:1:46: invalid operation: == (mismatched types string and int)
}
