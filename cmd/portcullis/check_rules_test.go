package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
)

func TestCheckRules(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := "hostname: a.test\nlisteners: [{name: a, address: '127.0.0.1:2525'}]\n"
	good := write("good.yaml", base+"dns: {servers: ['127.0.0.1:53']}\ninclude: ['rules.d/*.yaml']\nrules:\n  - {name: local, when: 'cidr(conn.ip, \"127.0.0.0/8\")', action: accept}\n")
	write("rules.d/10-dnsbl.yaml", "stages: [{name: dnsbl, plugin: dnsbl, timeout: 2s, config: {zones: [bl.example.test]}}]\nrules: [{name: listed, when: 'results.dnsbl.verdict == \"fail\"', action: reject, reply: '554 5.7.1 Listed'}]\n")
	bad := write("bad.yaml", base+"include: ['bad.d/*.yaml', 'missing.yaml', 'none.d/*.yaml']\nrules:\n  - {name: x, when: 'conn.ipp == \"\"', action: reject}\n")
	badRules := write("bad.d/r.yaml", "rules:\n  - name: y\n    when: 'results.nope.verdict == \"fail\"'\n    action: reject\n    reply: '451 4.7.1 Later'\n")
	cases := []struct {
		name   string
		config string
		code   int
		stdout string
	}{
		{"good", good, 0, "ok: " + good + "\n"},
		{"problems", bad, 1, bad + ":3:27: include \"" + filepath.Join(dir, "missing.yaml") + "\": no such file or directory\n" +
			bad + ":3:43: include \"" + filepath.Join(dir, "none.d/*.yaml") + "\": matches no file\n" +
			bad + ":5:27: conn has no field ipp (did you mean \"ip\"?)\n" +
			badRules + ":3:20: unknown stage \"nope\" in results.nope\n" +
			badRules + ":5:13: reply code 451 does not fit action reject (want 5xx)\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := run("check", "-c", c.config)
			if code != c.code || out != c.stdout {
				t.Errorf("got %d\n%s(stderr %q)\nwant %d\n%s", code, out, errs, c.code, c.stdout)
			}
		})
	}
	if errs := checkRules(mustConfig(t, good)); len(errs) != 0 {
		t.Errorf("checkRules(good) = %v", errs)
	}
	if errs := checkRules(mustConfig(t, bad)); len(errs) != 5 || !strings.HasPrefix(errs[2].Error(), bad+":5:27:") {
		t.Errorf("checkRules(bad) = %v", errs)
	}
}

func mustConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestCheckPlugins: a stage whose plugin `run` cannot start (a typo of a
// built-in, a missing or non-executable file, an executable that is no
// plugin) is a problem for `check` too, at the stage's position; a plugin
// executable (relative to the config file's directory) is started and asked
// about its config (the protocol's CheckConfig): a refusal is reported at
// the config key, in the plugin's words; one that exits at start is
// reported with its exit status and its last words on stderr. A plugin
// that cannot check configs (faultplugin's stage is no sdk.ConfigChecker)
// passes unasked.
func TestCheckPlugins(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"plugins/script": 0o755, "plugins/noexec": 0o644} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho 'cannot open licence file' >&2\nexit 3\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	placePlugin(t, "../../examples/plugin-hello", filepath.Join(dir, "plugins/hello"))
	placePlugin(t, "../../core/pluginhost/testdata/faultplugin", filepath.Join(dir, "plugins/fault"))
	cfg := filepath.Join(dir, "p.yaml")
	os.WriteFile(cfg, []byte("hostname: a.test\nlisteners: [{name: a, address: '127.0.0.1:2525'}]\nstages:\n"+
		"  - {name: a, plugin: dnsbl, config: {zones: [a.test]}}\n"+
		"  - {name: b, plugin: plugins/hello, config: {greeting: hi}}\n"+
		"  - {name: c, plugin: dnsbll}\n"+
		"  - {name: d, plugin: plugins/noexec}\n"+
		"  - {name: e, plugin: plugins}\n"+
		"  - {name: f, plugin: plugins/script}\n"+
		"  - name: g\n"+
		"    plugin: plugins/hello\n"+
		"    config: {greting: hi}\n"+
		"  - {name: h, plugin: plugins/fault, config: {refuse: unasked}}\n"+
		"dns: {servers: ['127.0.0.1:53']}\n"), 0o644)
	code, out, _ := run("check", "-c", cfg)
	list := builtinNames()
	want := cfg + `:6:23: stage "c": plugin "dnsbll" is not a built-in (` + list + `) nor an executable: ` +
		filepath.Join(dir, "dnsbll") + ": no such file or directory\n" +
		cfg + `:7:23: stage "d": plugin "plugins/noexec" is not a built-in (` + list + `) nor an executable: ` +
		filepath.Join(dir, "plugins/noexec") + ": not executable\n" +
		cfg + `:8:23: stage "e": plugin "plugins" is not a built-in (` + list + `) nor an executable: ` +
		filepath.Join(dir, "plugins") + ": not a regular file\n" +
		cfg + `:9:23: stage f: starting plugin plugins/script: Unrecognized remote plugin message: ` +
		`Failed to read any lines from plugin's stdout; ` + filepath.Join(dir, "plugins/script") +
		` did not complete the plugin handshake (exit status 3); its last output: "cannot open licence file": ` +
		`is it a Portcullis plugin built for this system?` + "\n" +
		cfg + `:12:5: stage g: config refused: unknown key "greting" (want greeting) (did you mean "greeting"?)` + "\n"
	if code != 1 || out != want {
		t.Errorf("got %d\n%s\nwant 1\n%s", code, out, want)
	}
}

// TestCheckPluginsAtOnce: check asks plugin executables at once, not one
// after the other (each may take up to pluginCheckTimeout, and a systemd
// ExecStartPre would wait for their sum). Each barrier stage's CheckConfig
// waits until all three have been asked: one at a time, the first would
// time out and be reported.
func TestCheckPluginsAtOnce(t *testing.T) {
	dir := t.TempDir()
	placePlugin(t, "./testdata/barrierplugin", filepath.Join(dir, "barrier"))
	meet := filepath.Join(dir, "meet")
	if err := os.Mkdir(meet, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "p.yaml")
	stage := func(name string) string {
		return fmt.Sprintf("  - {name: %s, plugin: ./barrier, config: {dir: %q, peers: 3}}\n", name, meet)
	}
	os.WriteFile(cfg, []byte("hostname: a.test\nlisteners: [{name: a, address: '127.0.0.1:2525'}]\nstages:\n"+
		stage("a")+stage("b")+stage("c")+"dns: {servers: ['127.0.0.1:53']}\n"), 0o644)
	code, out, errOut := run("check", "-c", cfg)
	if code != 0 {
		t.Errorf("check = %d\n%s%s", code, out, errOut)
	}
	if names, _ := filepath.Glob(filepath.Join(meet, "*")); len(names) != 3 {
		t.Errorf("%d stages asked, want 3: %v", len(names), names)
	}
}

// TestCheckNamesConfigAsGiven: a problem in the config file that the rule
// loader reports (an include: in it) is named by the path as given, as the
// config's own problems are, not by its absolute path.
func TestCheckNamesConfigAsGiven(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("hostname: a.test\nlisteners: [{name: a, address: '127.0.0.1:2525'}]\n"+
		"include: [missing.yaml]\nlog: {format: xml}\n"), 0o644)
	t.Chdir(dir)
	code, out, _ := run("check", "-c", "c.yaml")
	want := "c.yaml:4:15: log.format: \"xml\" is not one of text, json\n" +
		"c.yaml:3:11: include \"" + filepath.Join(dir, "missing.yaml") + "\": no such file or directory\n"
	if code != 1 || out != want {
		t.Errorf("got %d\n%s\nwant 1\n%s", code, out, want)
	}
}
