package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadPartial: with problems, Load returns no set while LoadPartial
// returns the stages and rules whose own entries had none (a stage whose
// when: does not compile is kept: its plugin and config are not in
// question), and SortProblems orders problems by file in reading order.
func TestLoadPartial(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.yaml", `stages:
  - {name: ok, plugin: dnsbl, config: {zones: [x.test]}}
  - {name: bad_on_error, plugin: dnsbl, on_error: explode}
  - {name: no_plugin}
  - {name: bad_when, plugin: dnsbl, when: 'conn.nope'}
  - {name: ok, plugin: other}
rules:
  - {name: fine, when: 'results.ok.verdict == "fail"', action: reject}
  - {name: bad, when: 'conn.nope', action: reject}
  - {name: nope, action: explode}
`)
	b := write("b.yaml", "stages: [{name: later, plugin: rdns}]\n")
	_ = write("c.yaml", "stages: [{name: clean, plugin: rdns}]\n")
	include := []string{"a.yaml", "b.yaml", "c.yaml"}
	if set, err := Load(dir, include, "", nil, nil); set != nil || err == nil {
		t.Fatalf("Load = %v, %v", set, err)
	}
	set, err := LoadPartial(dir, include, "", nil, nil)
	var probs Problems
	if !errors.As(err, &probs) || set == nil {
		t.Fatalf("LoadPartial = %v, %v", set, err)
	}
	var stages, rules []string
	for _, st := range set.Stages {
		stages = append(stages, st.Name)
	}
	for _, r := range set.Rules {
		rules = append(rules, r.Name)
	}
	if got := strings.Join(stages, " "); got != "ok bad_when later clean" {
		t.Errorf("stages %q", got)
	}
	if got := strings.Join(rules, " "); got != "fine" {
		t.Errorf("rules %q", got)
	}
	if len(probs) != 6 {
		t.Errorf("%d problems:\n%v", len(probs), err)
	}
	ps := Problems{{Pos{b, 1, 1}, "b"}, {Pos{"other", 1, 1}, "o"}, {Pos{a, 9, 1}, "a9"}, {Pos{a, 2, 1}, "a2"}}
	set.SortProblems(ps)
	var got []string
	for _, p := range ps {
		got = append(got, p.Msg)
	}
	if strings.Join(got, " ") != "a2 a9 b o" {
		t.Errorf("sorted: %v", got)
	}
	if set, err := LoadPartial(dir, []string{"c.yaml"}, "", nil, nil); err != nil || len(set.Stages) != 1 {
		t.Errorf("clean: %v, %v", set, err)
	}
}

// ReadsPregreet: whether any rule or stage when may read conn.pregreet,
// however it names it.
func TestReadsPregreet(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{"rules: [{name: r, when: 'conn.pregreet', action: reject}]", true},
		{"rules: [{name: r, when: 'conn[\"pregreet\"]', action: reject}]", true},
		{"rules: [{name: r, when: 'conn.ip == \"1.2.3.4\"', action: reject, reply: '554 5.7.1 {{conn.pregreet}}'}]", true},
		{"stages: [{name: s, plugin: x, when: '!conn.pregreet'}]", true},
		{"rules: [{name: r, when: 'conn.ip == \"1.2.3.4\" && conn.trusted', action: reject}]", false},
		{"stages: [{name: s, plugin: x, when: '!conn.trusted'}]", false},
	} {
		set, err := Parse("r.yaml", []byte(tc.src))
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if got := set.ReadsPregreet(); got != tc.want {
			t.Errorf("%s: ReadsPregreet = %v, want %v", tc.src, got, tc.want)
		}
	}
}
