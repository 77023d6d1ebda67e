package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/portcullis-mta/portcullis/core/config"
)

// checkDir is a gateway config directory for `portcullis check` tests:
// write puts a file in it, config the config file including rules.d.
type checkDir struct {
	t   *testing.T
	dir string
}

func newCheckDir(t *testing.T) checkDir { return checkDir{t, t.TempDir()} }

func (d checkDir) write(name, text string) string {
	d.t.Helper()
	p := filepath.Join(d.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		d.t.Fatal(err)
	}
	return p
}

// config writes p.yaml with include and returns its path.
func (d checkDir) config(include ...string) string {
	return d.write("p.yaml", "hostname: a.test\nlisteners: [{name: a, address: '127.0.0.1:2525'}]\n"+
		"dns: {servers: ['127.0.0.1:53']}\nstate: {path: state.db}\n"+
		"include: ['"+strings.Join(include, "', '")+"']\n")
}

// TestCheckStageConfigs: `check` reports a built-in stage's config that
// `run` would refuse, at the stage's config key, in the words of the
// stage; a plugin executable that cannot check configs is left for `run`
// (TestCheckPlugins has one that can).
func TestCheckStageConfigs(t *testing.T) {
	d := newCheckDir(t)
	d.write("lists/bad.txt", "fine\nre:casino(\n")
	// A plugin whose stage cannot check configs (not an
	// sdk.ConfigChecker): it is started, found unable, and passes unasked.
	os.MkdirAll(filepath.Join(d.dir, "plugins"), 0o755)
	placePlugin(t, "../../core/pluginhost/testdata/faultplugin", filepath.Join(d.dir, "plugins/third"))
	rules := d.write("rules.d/10-stages.yaml", `stages:
  - name: grey
    plugin: greylist
    config:
      dealy: 1m
  - name: words
    plugin: textfilter
    config: {lists: [{name: spam, file: lists/spam.txt}]}
  - name: subj
    plugin: subject
    config:
      lists: [{name: bad, file: lists/bad.txt}]
  - name: rdns
    plugin: rdns
    config: {dynamic_patterns: ['^ip\d', 'a[b']}
  - {name: inline, plugin: textfilter, config: {lists: [{name: x, patterns: ['re:a[b']}]}}
  - name: ok
    plugin: dnsbl
    config: {zones: [bl.example.test]}
  - name: third
    plugin: plugins/third
    config: {anything: goes}
`)
	cfg := d.config("rules.d/*.yaml")
	want := rules + `:4:5: stage grey: config refused: unknown key "dealy" (want delay, retry_window, pass_lifetime, auto_allow_after, ipv4_prefix, ipv6_prefix) (did you mean "delay"?)` + "\n" +
		rules + ":8:5: stage words: config refused: list spam: open " + filepath.Join(d.dir, "lists/spam.txt") + ": no such file or directory\n" +
		rules + ":11:5: stage subj: config refused: list " + filepath.Join(d.dir, "lists/bad.txt") + `: bad:2: bad regular expression "casino(": error parsing regexp: missing closing ): ` + "`(?i)casino(`\n" +
		rules + `:15:5: stage rdns: config refused: dynamic_patterns: bad pattern "a[b"` + "\n" +
		rules + `:16:40: stage inline: config refused: list x: bad regular expression "a[b": ` +
		"error parsing regexp: missing closing ]: `[b`\n"
	code, out, errs := run("check", "-c", cfg)
	if code != 1 || out != want {
		t.Errorf("got %d\n%s(stderr %q)\nwant 1\n%s", code, out, errs, want)
	}
}

// TestCheckExampleConnectionRules: the example connection rules, included
// without the list files they name, fail `check` with every missing file
// named; with the files in place they pass.
func TestCheckExampleConnectionRules(t *testing.T) {
	example, err := filepath.Abs("../../examples/rules/connection.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := newCheckDir(t)
	cfg := d.config(example)
	code, out, _ := run("check", "-c", cfg)
	lists := []string{"deny.txt (deny.files)", "allow.txt (allow.files)", "filter.txt (filters)", "delegated-latest (countries)"}
	if code != 1 || !strings.HasPrefix(out, example+":") || strings.Count(out, "\n") != 1 ||
		!strings.Contains(out, ": stage connfilter: config refused: no such file: ") {
		t.Fatalf("got %d\n%s", code, out)
	}
	for _, l := range lists {
		if !strings.Contains(out, filepath.Join(d.dir, "lists", l)) {
			t.Errorf("%s not named in\n%s", l, out)
		}
	}
	for _, l := range lists {
		d.write(filepath.Join("lists", strings.Fields(l)[0]), "")
	}
	if code, out, _ := run("check", "-c", cfg); code != 0 {
		t.Errorf("with the lists: got %d\n%s", code, out)
	}
}

// TestCheckExampleConnectionListsShipped: a gateway config in examples/
// that includes rules/connection.yaml, as the file's comment says, passes
// check with the sample list files shipped in examples/lists.
func TestCheckExampleConnectionListsShipped(t *testing.T) {
	dir, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	text := "hostname: a.test\nlisteners: [{name: a, address: '127.0.0.1:2525'}]\n" +
		"dns: {servers: ['127.0.0.1:53']}\ninclude: [rules/connection.yaml]\n"
	cfg, err := config.ParseIn([]byte(text), "p.yaml", dir)
	if err != nil {
		t.Fatal(err)
	}
	if errs := checkRules(cfg); len(errs) != 0 {
		t.Errorf("check of examples/rules/connection.yaml with examples/lists: %v", errs)
	}
}

// TestCheckStateLocked: the greylist and bayes stages' state files are
// locked by the running gateway; `check` (run as the daemon's
// ExecStartPre, or before a reload) must neither wait for the lock nor
// fail on it.
func TestCheckStateLocked(t *testing.T) {
	d := newCheckDir(t)
	d.write("rules.d/state.yaml", `stages:
  - {name: grey, plugin: greylist, config: {delay: 1m}}
  - {name: words, plugin: bayes, config: {spam_cutoff: 0.95}}
`)
	cfg := d.config("rules.d/*.yaml")
	for _, stage := range []string{"grey", "words"} {
		db, err := bolt.Open(filepath.Join(d.dir, "state."+stage+".db"), 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
	}
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out, _ := run("check", "-c", cfg)
		done <- result{code, out}
	}()
	select {
	case r := <-done:
		if r.code != 0 || r.out != "ok: "+cfg+"\n" {
			t.Errorf("got %d %q", r.code, r.out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("check waited for the state files' lock")
	}
}
