package rules

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/text/encoding/japanese"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-mta/portcullis/sdk"
)

// parse loads one rule file given as text, failing the test on problems.
func parse(t *testing.T, text string) *Set {
	t.Helper()
	s, err := Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

func testRequest() *sdk.Request {
	hdr := []sdk.HeaderField{{Name: "Subject", Value: "Cheap V1agra now"}, {Name: "From", Value: "Spammer <s@spam.example>"}, {Name: "X-Mailer", Value: "bulk 1.0"}}
	return &sdk.Request{
		Phase: sdk.PhaseData,
		Conn: sdk.Conn{IP: "192.0.2.7", Port: 40000, Hostname: "mail.sender.example", HELO: "sender.example",
			TLS: true, Listener: "mx", Country: "JP"},
		Envelope: sdk.Envelope{From: "bounce@Mail.Sender.Example", Rcpts: []string{"a@example.test", "b@example.test"}, Rcpt: "a@example.test"},
		Message:  sdk.NewBytesMessage(hdr, []byte("Subject: Cheap V1agra now\r\n\r\nbody\r\n")),
	}
}

func TestExpressions(t *testing.T) {
	set := parse(t, `stages: [{name: dnsbl, plugin: dnsbl}, {name: spf, plugin: spf}]`)
	res := map[string]*sdk.Result{"dnsbl": {Verdict: sdk.VerdictFail, Score: 3.5, Tags: []string{"Listed"}, Attrs: map[string]string{"zone": "zen.example"}}}
	env := set.NewEnv(testRequest(), res, Facts{Pregreet: true, MailParams: map[string]string{"SIZE": "1000"}})
	tests := []struct {
		expr string
		want bool
	}{
		{`cidr(conn.ip, "10.0.0.0/8", "192.0.2.0/24")`, true},
		{`cidr(conn.ip, "10.0.0.0/8", "192.0.2.8")`, false},
		{`cidr(conn.ip, "192.0.2.7")`, true},
		{`cidr("::ffff:192.0.2.7", "192.0.2.0/24")`, true},
		{`cidr("not an ip", "0.0.0.0/0")`, false},
		// An IPv4-mapped network matches as the IPv4 one it maps, as in
		// relay.networks and connfilter; so does one computed at run time.
		{`cidr(conn.ip, "::ffff:192.0.2.0/120")`, true},
		{`cidr(conn.ip, "::ffff:" + "192.0.2.0/120")`, true},
		{`cidr("::ffff:192.0.2.7", "::ffff:192.0.2.0/120")`, true},
		{`cidr(conn.ip, "::ffff:192.0.3.0/120")`, false},
		{`cidr("fe80::1%eth0", "fe80::/10")`, true},
		{`domain_match(mail.from, "sender.example")`, true},
		{`domain_match(mail.from, "other.example", "mail.sender.example.")`, true},
		{`domain_match(mail.from, "ender.example")`, false},
		{`domain_match("", "sender.example")`, false},
		{`domain_match(conn.helo, "sender.example")`, true},
		{`regex(msg.subject, "(?i)v[i1]agra")`, true},
		{`regex(msg.subject, "^viagra")`, false},
		{`header("x-mailer") == "bulk 1.0" && msg.header("X-MAILER") == "bulk 1.0"`, true},
		{`header("Missing") == ""`, true},
		{`msg.from contains "spam.example" && msg.size > 10`, true},
		{`has_tag(results.dnsbl, "listed") && "Listed" in results.dnsbl.tags`, true},
		{`results.dnsbl.attrs.zone == "zen.example" && results.dnsbl.score >= 3.5`, true},
		{`results.spf.verdict == "none" && len(results.spf.tags) == 0`, true},
		{`conn.pregreet && mail.params.SIZE == "1000" && conn.country == "JP"`, true},
		{`rcpt == "a@example.test" && len(rcpts) == 2 && conn.tls && !conn.trusted`, true},
		{`conn.port == 40000 && conn.listener == "mx" && conn.hostname endsWith ".example"`, true},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			p, probs := set.fns.compile(tc.expr, exprSrc{file: "t", node: &yaml.Node{Value: tc.expr, Line: 1, Column: 1}}, true)
			if len(probs) > 0 || p == nil {
				t.Fatalf("compile: %v", probs)
			}
			got, err := p.Bool(env)
			if err != nil || got != tc.want {
				t.Errorf("= %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestLoadPhases(t *testing.T) {
	set := parse(t, `
stages:
  - {name: dnsbl, plugin: dnsbl}
  - {name: av, plugin: clamav}
rules:
  - {name: c, when: 'cidr(conn.ip, "10.0.0.0/8")', action: accept}
  - {name: h, when: 'conn.helo == "localhost"', action: reject}
  - {name: m, when: 'mail.from == "" && conn.authenticated', action: reject}
  - {name: r, when: 'rcpt == "x@example.test"', action: reject}
  - {name: d, when: 'len(rcpts) > 5', action: tempfail}
  - {name: s, when: 'msg.size > 100', action: reject}
  - {name: hd, when: 'header("X-Spam") != ""', action: reject}
  - {name: always, action: reject}
  - {name: tag, action: tag, subject_prefix: '[SPAM] '}
  - {name: fixed, when: 'conn.trusted', action: accept, phase: rcpt}
  - {name: ddns, when: 'results.dnsbl.verdict == "fail"', action: reject}
  - {name: virus, when: 'results.av.verdict == "fail"', action: reject}
  - {name: tpl, action: reject, reply: '550 5.7.1 {{rcpt}} unknown'}
`)
	want := map[string]sdk.Phase{"c": "connect", "h": "helo", "m": "mail", "r": "rcpt", "d": "data", "s": "data",
		"hd": "data", "always": "connect", "tag": "data", "fixed": "rcpt", "ddns": "connect", "virus": "connect", "tpl": "rcpt"}
	check := func(want map[string]sdk.Phase) {
		t.Helper()
		for _, r := range set.Rules {
			if r.Phase != want[r.Name] {
				t.Errorf("rule %s: phase %s, want %s", r.Name, r.Phase, want[r.Name])
			}
		}
	}
	check(want)
	if err := set.Bind(map[string][]sdk.Phase{"dnsbl": {"connect"}, "av": {"data"}}); err != nil {
		t.Fatal(err)
	}
	want["virus"] = "data"
	check(want)
	if !set.HasRules(sdk.PhaseHelo) || set.HasRules("nope") {
		t.Error("HasRules")
	}
}

func TestBindProblems(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"fixed phase before results", `
stages: [{name: av, plugin: clamav}]
rules: [{name: v, when: 'results.av.verdict == "fail"', action: reject, phase: rcpt}]`,
			`test.yaml:3:80: phase rcpt is too early for rule "v": results.av is known at data`},
		{"stage when reads later facts", `
stages: [{name: dnsbl, plugin: dnsbl, when: 'msg.size > 0'}]`,
			`test.yaml:2:46: stage "dnsbl" runs at connect, but its when reads what is known at data`},
		{"stage when reads a parallel stage", `
stages: [{name: dnsbl, plugin: dnsbl, when: 'results.av.verdict == "pass"'}, {name: av, plugin: x}]`,
			`test.yaml:2:54: stage "dnsbl" runs at connect, but results.av is known only after connect`},
		{"stage without plugin phases", `
stages: [{name: other, plugin: x}]`,
			`test.yaml:2:10: stage "other" has no plugin loaded`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := parse(t, tc.text)
			phases := map[string][]sdk.Phase{"av": {"connect"}, "dnsbl": {"connect"}}
			if tc.name == "fixed phase before results" {
				phases = map[string][]sdk.Phase{"av": {"data"}}
			}
			err := set.Bind(phases)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Bind: %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestDecideAndReplies(t *testing.T) {
	set := parse(t, `
stages: [{name: dnsbl, plugin: dnsbl}]
rules:
  - {name: white, when: 'conn.ip == "192.0.2.1"', action: accept}
  - name: listed
    when: 'results.dnsbl.verdict == "fail"'
    action: reject
    reply: '554 5.7.1 [{{conn.ip}}] listed at {{results.dnsbl.attrs.zone}}'
  - {name: soft, when: 'results.dnsbl.verdict == "error"', action: tempfail}
  - {name: late, when: 'conn.helo == "x"', action: reject}
`)
	if err := set.Bind(map[string][]sdk.Phase{"dnsbl": {"connect"}}); err != nil {
		t.Fatal(err)
	}
	req := testRequest()
	tests := []struct {
		name, ip string
		result   *sdk.Result
		rule     string
		reply    string
	}{
		{"whitelisted beats listed", "192.0.2.1", &sdk.Result{Verdict: "fail"}, "white", ""},
		{"listed", "192.0.2.9", &sdk.Result{Verdict: "fail", Attrs: map[string]string{"zone": "zen\r\nX: y"}}, "listed", "554 5.7.1 [192.0.2.9] listed at zen X: y"},
		{"error default tempfail", "192.0.2.9", &sdk.Result{Verdict: "error"}, "soft", "451 4.7.1 Try again later"},
		{"nothing matches", "192.0.2.9", &sdk.Result{Verdict: "pass"}, "", ""},
		{"no result reads none", "192.0.2.9", nil, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req.Conn.IP = tc.ip
			res := map[string]*sdk.Result{}
			if tc.result != nil {
				res["dnsbl"] = tc.result
			}
			r, err := set.Decide(sdk.PhaseConnect, set.NewEnv(req, res, Facts{}))
			if err != nil {
				t.Fatal(err)
			}
			if name := ruleName(r); name != tc.rule {
				t.Fatalf("rule %q, want %q", name, tc.rule)
			}
			if r != nil && tc.reply != "" {
				code, enh, text, err := r.RenderReply(sdk.PhaseConnect, set.NewEnv(req, res, Facts{}))
				if got := strings.Join([]string{itoa(code), enh, text}, " "); err != nil || got != tc.reply {
					t.Errorf("reply %q, %v; want %q", got, err, tc.reply)
				}
			}
		})
	}
	late := set.Rules[3]
	for _, tc := range []struct {
		phase sdk.Phase
		want  string
	}{{sdk.PhaseConnect, "554 5.7.1 Message rejected by policy"}, {sdk.PhaseHelo, "550 5.7.1 Message rejected by policy"},
		{sdk.PhaseRcpt, "550 5.7.1 Recipient rejected by policy"}, {sdk.PhaseData, "550 5.7.1 Message rejected by policy"}} {
		code, enh, text, _ := late.RenderReply(tc.phase, nil)
		if got := strings.Join([]string{itoa(code), enh, text}, " "); got != tc.want {
			t.Errorf("default reply at %s: %q, want %q", tc.phase, got, tc.want)
		}
	}
}

func ruleName(r *Rule) string {
	if r == nil {
		return ""
	}
	return r.Name
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestActionsParsed(t *testing.T) {
	set := parse(t, `
rules:
  - {name: a, action: accept}
  - {name: rj, action: reject, reply: '550 Go away'}
  - {name: tf, action: tempfail, reply: '421 4.3.2 Closing'}
  - {name: dc, action: discard}
  - {name: q, action: quarantine}
  - name: t
    action: tag
    header: {name: X-Spam-Flag, value: 'YES score={{msg.size}}'}
    subject_prefix: '[SPAM] '
  - {name: ah, action: add_header, header: {name: X-Checked, value: 'by portcullis'}}
  - {name: rd, action: redirect, recipients: [quarantine@example.test]}
  - {name: ls, action: learn_spam}
  - {name: lh, action: learn_ham}
`)
	env := set.NewEnv(testRequest(), nil, Facts{})
	byName := map[string]*Rule{}
	for _, r := range set.Rules {
		byName[r.Name] = r
	}
	if r := byName["rj"].Reply; r.Code != 550 || r.Enhanced != "5.7.1" {
		t.Errorf("reply without enhanced code: %+v", r)
	}
	if s, _ := byName["rj"].Reply.Text.Static(); s != "Go away" {
		t.Errorf("reply text %q", s)
	}
	if r := byName["tf"].Reply; r.Code != 421 || r.Enhanced != "4.3.2" {
		t.Errorf("tempfail reply %+v", r)
	}
	if v, err := byName["t"].Header.Value.Render(env); err != nil || v != "YES score=35" {
		t.Errorf("tag header value %q, %v", v, err)
	}
	if byName["t"].SubjectPrefix != "[SPAM] " || byName["ah"].Header.Name != "X-Checked" {
		t.Error("tag/add_header fields")
	}
	if !reflect.DeepEqual(byName["rd"].Recipients, []string{"quarantine@example.test"}) {
		t.Error("redirect recipients")
	}
	for name, terminal := range map[string]bool{"a": true, "rj": true, "tf": true, "dc": true, "q": true, "t": false, "ah": false, "rd": false, "ls": false, "lh": false} {
		if Terminal(byName[name].Action) != terminal {
			t.Errorf("Terminal(%s) != %v", byName[name].Action, terminal)
		}
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadIncludes(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "portcullis.yaml")
	writeFile(t, cfg, "hostname: mx.example.test\nstages:\n  - {name: inline_stage, plugin: x}\nrules:\n  - {name: inline_rule, action: accept, when: 'conn.trusted'}\n")
	writeFile(t, filepath.Join(dir, "rules.d/20-b.yaml"), "rules: [{name: b, action: reject, when: 'results.a_stage.verdict == \"fail\"'}]\n")
	writeFile(t, filepath.Join(dir, "rules.d/10-a.yaml"), "stages: [{name: a_stage, plugin: a}]\nrules: [{name: a, action: tempfail}]\ninclude: [../extra/*.yaml]\n")
	writeFile(t, filepath.Join(dir, "extra/x.yaml"), "rules: [{name: nested, action: accept}]\n")
	writeFile(t, filepath.Join(dir, "last.yaml"), "rules: [{name: last, action: accept}]\n")
	var doc struct {
		Stages yaml.Node `yaml:"stages"`
		Rules  yaml.Node `yaml:"rules"`
	}
	b, _ := os.ReadFile(cfg)
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	set, err := Load(dir, []string{"rules.d/*.yaml", "last.yaml", "rules.d/10-a.yaml"}, cfg, &doc.Stages, &doc.Rules)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range set.Rules {
		names = append(names, r.Name)
	}
	if want := []string{"inline_rule", "a", "nested", "b", "last"}; !reflect.DeepEqual(names, want) {
		t.Errorf("rules %v, want %v", names, want)
	}
	if len(set.Stages) != 2 || set.Stages[0].Name != "inline_stage" || set.Stages[0].Pos.Line != 3 || set.Stages[0].Pos.File != cfg {
		t.Errorf("stages %+v", set.Stages[0])
	}
	_, err = Load(dir, []string{"missing.yaml"}, cfg, nil, nil)
	var probs Problems
	if !errors.As(err, &probs) || len(probs) != 1 || !strings.HasPrefix(probs[0].Error(), cfg+`: include "missing.yaml"`) {
		t.Errorf("missing literal include: %v", err)
	}
}

func TestStageDefaults(t *testing.T) {
	set := parse(t, `stages: [{name: a, plugin: a, config: {zones: [z1, z2], n: 3}}, {name: b, plugin: b, timeout: 250ms, on_error: continue, when: '!conn.trusted'}]`)
	a, b := set.Stage("a"), set.Stage("b")
	if a.Timeout != DefaultTimeout || a.OnError != OnErrorTempfail || a.When != nil || a.Config["n"] != 3 {
		t.Errorf("defaults: %+v", a)
	}
	if b.Timeout.Milliseconds() != 250 || b.OnError != OnErrorContinue || b.When == nil {
		t.Errorf("b: %+v", b)
	}
	if ok, _ := b.When.Bool(set.NewEnv(testRequest(), nil, Facts{})); !ok {
		t.Error("when")
	}
}

func TestEncodedHeaders(t *testing.T) {
	set := parse(t, "rules: []")
	req := testRequest()
	req.Message = sdk.NewBytesMessage([]sdk.HeaderField{
		{Name: "Subject", Value: "=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?="}, // こんにちは
		{Name: "From", Value: "=?Shift_JIS?B?k4yLng==?= <a@example.jp>"},       // 東京
		{Name: "X-Bad", Value: "=?unknown-charset?B?eA==?="},
	}, nil)
	env := set.NewEnv(req, nil, Facts{})
	if env.Msg.Subject != "こんにちは" {
		t.Errorf("subject %q", env.Msg.Subject)
	}
	if env.Msg.From != "東京 <a@example.jp>" {
		t.Errorf("from %q", env.Msg.From)
	}
	// An unknown charset's text is detected, as the subject stage does.
	if got := env.Header("x-bad"); got != "x" {
		t.Errorf("unknown charset: %q", got)
	}
}

// TestSubjectDecodedAsByStages: msg.subject is decoded by the decoder the
// subject and text stages use, so a rule on it matches where they do
// (Go's mime.WordDecoder, used before, got each of these wrong).
func TestSubjectDecodedAsByStages(t *testing.T) {
	set := parse(t, "rules: []")
	jis, _ := japanese.ISO2022JP.NewEncoder().String("未承諾広告")
	sjis, _ := japanese.ShiftJIS.NewEncoder().String("未承諾広告")
	b64 := base64.StdEncoding.EncodeToString
	for name, subject := range map[string]string{
		// 諾 split between two encoded words, as some mailers do.
		"split character":                "=?ISO-2022-JP?B?" + b64([]byte(jis[:8])) + "?=\r\n =?ISO-2022-JP?B?" + b64([]byte(jis[8:])) + "?=",
		"raw ISO-2022-JP":                jis,
		"Shift_JIS labelled ISO-2022-JP": "=?ISO-2022-JP?B?" + b64([]byte(sjis)) + "?=",
	} {
		req := testRequest()
		req.Message = sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: subject}}, nil)
		if got := set.NewEnv(req, nil, Facts{}).Msg.Subject; got != "未承諾広告" {
			t.Errorf("%s: msg.subject %q, want 未承諾広告", name, got)
		}
	}
}

func TestBareTag(t *testing.T) {
	set := parse(t, "rules: [{name: suspicious, action: tag}]")
	r := set.Rules[0]
	v, err := r.Header.Value.Render(nil)
	if r.Header.Name != DefaultTagHeader || v != "suspicious" || err != nil {
		t.Errorf("bare tag header %s: %q (%v)", r.Header.Name, v, err)
	}
}

// TestExampleRuleFiles lints the rule files shipped under examples/.
func TestExampleRuleFiles(t *testing.T) {
	files, _ := filepath.Glob("../examples/*/*.yaml")
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var top map[string]any
		if yaml.Unmarshal(b, &top) != nil || top["rules"] == nil && top["stages"] == nil || top["listeners"] != nil {
			continue // not a rule file
		}
		n++
		if _, err := Parse(f, b); err != nil {
			t.Errorf("%v", err)
		}
	}
	if n == 0 {
		t.Fatal("no example rule files found")
	}
}

// TestYAMLErrorLine: a syntax error deep in a long rule file is reported at
// its line, though yaml.v3 names the start of the enclosing sequence (an
// admin told "1:1" in a file of thousands of lines has nowhere to look).
func TestYAMLErrorLine(t *testing.T) {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "  - name: r%d\n    when: 'rcpt == \"x%d@example.test\"'\n    action: reject\n", i, i)
	}
	b.WriteString("  - name: broken\n   action: reject\n") // one space short: line 3003
	_, err := Parse("big.yaml", []byte(b.String()))
	if err == nil || !strings.HasPrefix(err.Error(), "big.yaml:3003:1: YAML: ") {
		t.Errorf("error %v, want it at big.yaml:3003", err)
	}
}

// TestIncludeMatchingNothing: a glob that matches no rule file (a typo,
// a directory not yet made, only an editor's hidden lock file) is refused
// at the include's position, as a missing literal path is: loading no
// rules would leave the gateway accepting everything with check saying ok.
// An empty drop-in directory is no typo (CONTRACT's include:
// ["rules.d/*.yaml"] beside inline rules, no file there yet).
func TestIncludeMatchingNothing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "rules.d/a.yaml"), "rules: [{name: a, action: accept}]\n")
	writeFile(t, filepath.Join(dir, "rules.d/.#b.yaml"), "rules: [{name: b, action: accept}]\n")
	writeFile(t, filepath.Join(dir, "nested.yaml"), "include: [nowhere/*.yaml]\n")
	writeFile(t, filepath.Join(dir, "empty.d/.keep"), "")
	cases := []struct {
		name    string
		include []string
		want    string
	}{
		{"typo in the directory", []string{"rule.d/*.yaml"}, `p.yaml: include "rule.d/*.yaml": matches no file`},
		{"typo in the extension", []string{"rules.d/*.yml"}, `p.yaml: include "rules.d/*.yml": matches no file`},
		{"only a hidden file", []string{"rules.d/*#b.yaml"}, `p.yaml: include "rules.d/*#b.yaml": matches no file`},
		{"in a rule file", []string{"nested.yaml"}, filepath.Join(dir, "nested.yaml") + `:1:11: include "nowhere/*.yaml": matches no file`},
		{"a match", []string{"rules.d/*.yaml"}, ""},
		{"an empty drop-in directory", []string{"empty.d/*.yaml"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(dir, c.include, "p.yaml", nil, nil)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestIncludeSkipsHiddenFiles: a glob leaves out names starting with a dot,
// as a shell's does: an editor's lock file beside a rule file (Emacs's
// .#a.yaml, a link to nowhere while the file is edited) made a reload
// fail, and a hidden backup was loaded as rules. A dot in the pattern
// matches as written.
func TestIncludeSkipsHiddenFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rules.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "rules.d", "a.yaml"), []byte("rules: [{name: a, when: 'rcpt == \"a@x\"', action: reject}]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.d", ".hidden.yaml"), []byte("rules: [{name: hidden, when: 'rcpt == \"h@x\"', action: reject}]\n"), 0o644)
	os.Symlink("user@host.1234:1700000000", filepath.Join(dir, "rules.d", ".#a.yaml"))
	set, err := Load(dir, []string{"rules.d/*.yaml"}, "", nil, nil)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if len(set.Rules) != 1 || set.Rules[0].Name != "a" {
		t.Errorf("rules %v, want only a", set.Rules)
	}
	set, err = Load(dir, []string{"rules.d/.h*.yaml"}, "", nil, nil)
	if err != nil || len(set.Rules) != 1 || set.Rules[0].Name != "hidden" {
		t.Errorf("a dot in the pattern: %v %v", set, err)
	}
}

// A redirect to a domain beyond ASCII goes to its A-label form, as an
// accepted recipient does: routes match A-labels, and a U-label went out
// raw in RCPT TO without SMTPUTF8.
func TestRedirectIDNDomain(t *testing.T) {
	set := parse(t, `
rules:
  - {name: rd, action: redirect, recipients: ['x@Bücher.example', 'pelé@exämple.test', 'a@EXAMPLE.test']}
`)
	want := []string{"x@xn--bcher-kva.example", "pelé@xn--exmple-cua.test", "a@EXAMPLE.test"}
	if got := set.Rules[0].Recipients; !reflect.DeepEqual(got, want) {
		t.Errorf("redirect recipients %q, want %q", got, want)
	}
}
