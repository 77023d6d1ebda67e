package rules

import (
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestRcptBoundLate: rcpt is empty after the rcpt phase, so a rule or a
// stage's when that reads it there could never match; Bind refuses it when
// a results reference (known only once the plugins are loaded) moves the
// rule to the data phase.
func TestRcptBoundLate(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"rule moved to data by results", `
stages: [{name: av, plugin: clamav}]
rules: [{name: v, when: 'results.av.verdict == "fail" && rcpt == "x@example.test"', action: reject}]`,
			`test.yaml:3:58: rule "v" reads rcpt, the recipient of one RCPT command, but runs at data (results.av), where rcpt is empty: use rcpts`},
		{"stage when at data", `
stages: [{name: av, plugin: clamav, when: 'rcpt != "postmaster@example.test"'}]`,
			`test.yaml:2:44: stage "av" also runs at data, where rcpt is empty, but its when reads rcpt: use rcpts`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := parse(t, tc.text)
			err := set.Bind(map[string][]sdk.Phase{"av": {sdk.PhaseRcpt, sdk.PhaseData}})
			if err == nil || err.Error() != tc.want {
				t.Errorf("Bind: %v\nwant %s", err, tc.want)
			}
		})
	}
	t.Run("per recipient is fine", func(t *testing.T) {
		set := parse(t, `
stages: [{name: grey, plugin: greylist, when: 'rcpt != "postmaster@example.test"'}]
rules: [{name: g, when: 'results.grey.verdict == "fail" && rcpt != ""', action: tempfail, reply: '451 4.7.1 <{{rcpt}}> greylisted'}]`)
		if err := set.Bind(map[string][]sdk.Phase{"grey": {sdk.PhaseRcpt}}); err != nil {
			t.Fatal(err)
		}
		if set.Rules[0].Phase != sdk.PhaseRcpt {
			t.Errorf("phase %s", set.Rules[0].Phase)
		}
	})
}

// TestRenderOneLine: whatever a value holds (a decoded Subject can hold
// any byte), a rendered reply or header value is one line without control
// characters.
func TestRenderOneLine(t *testing.T) {
	set := parse(t, `
stages: [{name: x, plugin: x}]
rules:
  - {name: r, when: 'results.x.verdict == "fail"', action: reject, reply: '550 5.7.1 Refused: {{results.x.reason}}'}
  - {name: h, action: add_header, header: {name: X-Why, value: "{{msg.subject}}\u0000!"}}`)
	if err := set.Bind(map[string][]sdk.Phase{"x": {sdk.PhaseConnect}}); err != nil {
		t.Fatal(err)
	}
	req := testRequest()
	req.Message = sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: "=?utf-8?q?a=00b=1B[31mc=0D=0AX-Evil:_1=09d?="}}, nil)
	env := set.NewEnv(req, map[string]*sdk.Result{"x": {Verdict: "fail", Reason: "bad\x00\r\n250 OK\x7f"}}, Facts{})
	_, _, text, err := set.Rules[0].RenderReply(sdk.PhaseConnect, env)
	if want := "Refused: bad 250 OK"; err != nil || text != want {
		t.Errorf("reply %q, %v; want %q", text, err, want)
	}
	v, err := set.Rules[1].Header.Value.Render(env)
	if want := "ab[31mc X-Evil: 1\td!"; err != nil || v != want {
		t.Errorf("header %q, %v; want %q", v, err, want)
	}
}

// TestTemplateBracesInStrings: a "}}" inside a string literal does not
// close the hole (expr's own strings may hold anything).
func TestTemplateBracesInStrings(t *testing.T) {
	set := parse(t, `rules: [{name: r, action: reject, reply: '550 5.7.1 {{ "}}" + conn.ip + ''}}'' }} and {{ `+"`}}`"+` }}'}]`)
	_, _, text, err := set.Rules[0].RenderReply(sdk.PhaseConnect, set.NewEnv(testRequest(), nil, Facts{}))
	if want := "}}192.0.2.7}} and }}"; err != nil || text != want {
		t.Errorf("reply %q, %v; want %q", text, err, want)
	}
}

// TestCountryFromResultsStable: when two stages report attrs.country,
// conn.country is the first stage's in rule-file order, every time (not
// whichever Go's map iteration happens to yield first).
func TestCountryFromResultsStable(t *testing.T) {
	set := parse(t, `stages: [{name: zz_geo, plugin: a}, {name: aa_geo, plugin: b}, {name: cc, plugin: c}, {name: bb, plugin: d}]`)
	res := map[string]*sdk.Result{
		"zz_geo": {Verdict: "neutral", Attrs: map[string]string{"country": "KP"}},
		"aa_geo": {Verdict: "neutral", Attrs: map[string]string{"country": "US"}},
		"cc":     {Verdict: "pass"}, "bb": {Verdict: "pass"},
	}
	req := testRequest()
	req.Conn.Country = ""
	seen := map[string]int{}
	for range 200 {
		seen[set.NewEnv(req, res, Facts{}).Conn.Country]++
	}
	if len(seen) != 1 || seen["KP"] != 200 {
		t.Errorf("conn.country over 200 environments: %v, want always KP", seen)
	}
}

// TestRuntimeErrors documents what a rule that fails at run time does: a
// missing attr or a skipped stage's fields read as zero values, but a
// conversion or an index that cannot work is an error of the phase (the
// pipeline answers 451 4.3.0, never a silent accept).
func TestRuntimeErrors(t *testing.T) {
	set := parse(t, `
stages: [{name: dnsbl, plugin: dnsbl}]
rules:
  - {name: missing_ok, when: 'results.dnsbl.attrs.zone startsWith "zen" || mail.params.SIZE == "1"', action: reject}
  - {name: conversion, when: 'int(results.dnsbl.attrs.weight) > 3', action: reject}
`)
	if err := set.Bind(map[string][]sdk.Phase{"dnsbl": {sdk.PhaseConnect}}); err != nil {
		t.Fatal(err)
	}
	env := set.NewEnv(testRequest(), nil, Facts{})
	r, err := set.Decide(sdk.PhaseMail, env)
	if r != nil || err != nil {
		t.Errorf("mail: %v, %v; want no match", ruleName(r), err)
	}
	r, err = set.Decide(sdk.PhaseConnect, env)
	if r == nil || r.Name != "conversion" || err == nil || !strings.Contains(err.Error(), `rule "conversion"`) {
		t.Errorf("connect: %v, %v; want rule conversion's error", ruleName(r), err)
	}
}
