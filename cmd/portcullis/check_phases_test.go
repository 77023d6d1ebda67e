package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The checks of rules.Set.Bind depend on the phases the stages' plugins
// run at (sdk.Info.Phases). `check` asks every plugin it can start, as it
// does for their configs, and reports what `run` and `scan` would refuse,
// in their words.

// TestCheckPhasesRcptAtData: a rule that reads rcpt but, reading a
// data-phase stage's results, runs at data (where rcpt is empty).
func TestCheckPhasesRcptAtData(t *testing.T) {
	d := newCheckDir(t)
	rules := d.write("rules.d/text.yaml", `stages:
  - {name: text, plugin: textfilter, config: {lists: [{name: x, patterns: [foo]}]}}
rules:
  - {name: r1, when: 'results.text.verdict == "fail"', action: reject}
  - {name: r2, when: 'results.text.verdict == "fail" && rcpt == "b@example.test"', action: reject}
`)
	cfg := d.config("rules.d/*.yaml")
	want := rules + `:5:57: rule "r2" reads rcpt, the recipient of one RCPT command, but runs at data (results.text), where rcpt is empty: use rcpts` + "\n"
	if code, out, errs := run("check", "-c", cfg); code != 1 || out != want {
		t.Errorf("got %d\n%s(stderr %q)\nwant 1\n%s", code, out, errs, want)
	}
}

// TestCheckPhasesStageWhen: a stage's when that reads the results of a
// stage of its own phase, which are not known before it runs.
func TestCheckPhasesStageWhen(t *testing.T) {
	d := newCheckDir(t)
	rules := d.write("rules.d/grey.yaml", `stages:
  - {name: a1, plugin: greylist, config: {delay: 1m}}
  - {name: a2, plugin: greylist, when: 'results.a1.verdict != "fail"', config: {delay: 2m}}
`)
	cfg := d.config("rules.d/*.yaml")
	want := rules + `:3:49: stage "a2" runs at rcpt, but results.a1 is known only after rcpt` + "\n"
	if code, out, errs := run("check", "-c", cfg); code != 1 || out != want {
		t.Errorf("got %d\n%s(stderr %q)\nwant 1\n%s", code, out, errs, want)
	}
}

// TestCheckPhasesPluginExecutable: the phases of a plugin executable are
// what it says at start: plugin-hello runs at data, faultplugin (which
// cannot check configs) at connect and data. The problem reads as `scan`
// reports it. A stage whose plugin cannot be started is reported once:
// the rules that read its results are not checked against guessed phases.
func TestCheckPhasesPluginExecutable(t *testing.T) {
	d := newCheckDir(t)
	os.MkdirAll(filepath.Join(d.dir, "plugins"), 0o755)
	placePlugin(t, "../../examples/plugin-hello", filepath.Join(d.dir, "plugins/hello"))
	placePlugin(t, "../../core/pluginhost/testdata/faultplugin", filepath.Join(d.dir, "plugins/fault"))
	hello := `stages:
  - {name: hello, plugin: plugins/hello, config: {greeting: hi}}
rules:
  - {name: r3, when: 'results.hello.verdict == "fail" && rcpt == "b@example.test"', action: reject}
`
	rulesHello := d.write("rules.d/10-hello.yaml", hello)
	rulesMore := d.write("rules.d/20-more.yaml", `stages:
  - {name: fault, plugin: plugins/fault}
  - {name: gone, plugin: plugins/gone}
rules:
  - {name: r4, when: 'rcpt == "c@example.test" && results.fault.verdict == "pass"', action: reject}
  - {name: r5, when: 'rcpt == "c@example.test" && results.gone.verdict == "pass"', action: reject}
`)
	cfg := d.config("rules.d/*.yaml")
	want := rulesHello + `:4:58: rule "r3" reads rcpt, the recipient of one RCPT command, but runs at data (results.hello), where rcpt is empty: use rcpts` + "\n" +
		rulesMore + `:3:26: stage "gone": plugin "plugins/gone" is not a built-in (` + builtinNames() + `) nor an executable: ` +
		filepath.Join(d.dir, "plugins/gone") + ": no such file or directory\n" +
		rulesMore + `:5:23: rule "r4" reads rcpt, the recipient of one RCPT command, but runs at data (results.fault), where rcpt is empty: use rcpts` + "\n"
	if code, out, errs := run("check", "-c", cfg); code != 1 || out != want {
		t.Errorf("got %d\n%s(stderr %q)\nwant 1\n%s", code, out, errs, want)
	}

	// scan, which starts the plugin as run does, refuses the rule in the
	// same words.
	d.write("rules.d/20-more.yaml", "")
	msg := d.write("m.eml", "From: a@example.test\nSubject: x\n\nbody\n")
	code, _, errs := run("scan", "-c", cfg, msg)
	if first, _, _ := strings.Cut(want, "\n"); code != 1 || errs != first+"\n" {
		t.Errorf("scan: got %d %q, want 1 %q", code, errs, first+"\n")
	}
}

// TestCheckPhasesClean: built-in stages at several phases, with rules and
// stage whens that read only what is known when they run, pass.
func TestCheckPhasesClean(t *testing.T) {
	d := newCheckDir(t)
	d.write("rules.d/ok.yaml", `stages:
  - {name: rdns, plugin: rdns}
  - {name: bl, plugin: dnsbl, config: {zones: [bl.example.test]}}
  - {name: grey, plugin: greylist, when: 'results.rdns.verdict != "pass"', config: {delay: 1m}}
  - {name: text, plugin: textfilter, when: 'results.grey.verdict == "pass"', config: {lists: [{name: x, patterns: [foo]}]}}
rules:
  - {name: bad_rdns, when: 'results.rdns.verdict == "fail"', action: reject}
  - {name: listed, when: 'results.bl.verdict == "fail"', action: tempfail}
  - {name: abuse, when: 'rcpt == "abuse@example.test" && results.bl.verdict == "fail"', action: reject}
  - {name: words, when: 'results.text.verdict == "fail" && "b@example.test" in rcpts', action: reject}
  - {name: late, when: 'results.rdns.verdict == "fail"', phase: data, action: reject}
`)
	cfg := d.config("rules.d/*.yaml")
	if code, out, errs := run("check", "-c", cfg); code != 0 || out != "ok: "+cfg+"\n" {
		t.Errorf("got %d\n%s(stderr %q)", code, out, errs)
	}
}

// TestCheckPhasesLoadProblemsOnce: a rule whose phase problem is found
// without the plugins (its action's or its facts' phase) is reported once,
// in the words of Load, where `run` stops, even when the phases of the
// stages it reads would have placed it later still; a rule with a problem
// only the phases show is reported with it.
func TestCheckPhasesLoadProblemsOnce(t *testing.T) {
	d := newCheckDir(t)
	rules := d.write("rules.d/r.yaml", `stages:
  - {name: text, plugin: textfilter, config: {lists: [{name: x, patterns: [foo]}]}}
  - {name: grey, plugin: greylist, config: {delay: 1m}}
rules:
  - {name: q, when: 'rcpt == "b@example.test"', action: quarantine}
  - {name: h, when: 'conn.helo == "x" && results.text.verdict == "fail"', phase: connect, action: reject}
  - {name: e, when: 'results.grey.verdict == "fail"', phase: connect, action: reject}
`)
	cfg := d.config("rules.d/*.yaml")
	want := rules + `:5:22: rule "q" reads rcpt, the recipient of one RCPT command, but runs at data (action quarantine), where rcpt is empty: use rcpts` + "\n" +
		rules + `:6:82: phase connect is too early for rule "h": what it reads is known at helo` + "\n" +
		rules + `:7:62: phase connect is too early for rule "e": results.grey is known at rcpt` + "\n"
	if code, out, errs := run("check", "-c", cfg); code != 1 || out != want {
		t.Errorf("got %d\n%s(stderr %q)\nwant 1\n%s", code, out, errs, want)
	}
}
