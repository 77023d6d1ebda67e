package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBayesNoSuchStage: the bayes commands work on a stage of the rule
// files that runs the bayes plugin, or fail (exit 1) saying which stages
// do, before any state file is created: before, they trained and read a
// store that no stage of the gateway reads.
func TestBayesNoSuchStage(t *testing.T) {
	f := newBayesFixture(t)
	dir := filepath.Dir(f.cfg)
	cfg := writeTestFile(t, filepath.Join(dir, "other.yaml"), "hostname: mx.example.test\n"+
		"listeners: [{name: mx, address: '127.0.0.1:2525'}]\nstate: {path: other.db}\n"+
		"stages:\n  - {name: spamA, plugin: bayes}\n  - {name: spamB, plugin: bayes}\n"+
		"  - {name: bl, plugin: dnsbl, config: {zones: [zen.example]}}\n")
	none := writeTestFile(t, filepath.Join(dir, "none.yaml"), "hostname: mx.example.test\n"+
		"listeners: [{name: mx, address: '127.0.0.1:2525'}]\nstate: {path: none.db}\n")
	const have = "(stages running the bayes plugin: spamA, spamB)"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"learn, default stage", []string{"learn", "--spam", f.spam, "-c", cfg},
			`portcullis bayes learn: no stage "bayes" in the rule files of ` + cfg + " " + have},
		{"stats, --stage", []string{"stats", "--stage", "nosuch", "-c", cfg},
			`portcullis bayes stats: no stage "nosuch" in the rule files of ` + cfg + " " + have},
		{"classify, a stage of another plugin", []string{"classify", f.ham, "--stage", "bl", "-c", cfg},
			`portcullis bayes classify: stage "bl" in the rule files of ` + cfg + ` runs plugin "dnsbl", not bayes ` + have},
		{"no bayes stage at all, --stage", []string{"stats", "--stage", "spam", "-c", none},
			`portcullis bayes stats: no stage "spam" in the rule files of ` + none + " (no stage runs the bayes plugin)"},
		{"the fixture's stage under another name", []string{"stats", "--stage", "spamA", "-c", f.cfg},
			`no stage "spamA" in the rule files of ` + f.cfg + " (stages running the bayes plugin: bayes)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runBayesCmd(tc.args...)
			if code != exitFailed || !strings.Contains(errs, tc.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", code, out, errs, tc.want)
			}
		})
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.db"))
	if len(matches) > 0 {
		t.Errorf("state files created: %v", matches)
	}
	// No stage runs bayes and none was named (a gateway being set up, the
	// built-in config, a scorer's minimal config): the defaults, over the
	// store a stage named bayes will read, with a note.
	code, out, errs := runBayesCmd("learn", "--spam", f.spam, "--ham", f.ham, "-c", none)
	if code != exitOK || !strings.Contains(errs, "note: no stage in the rule files of "+none+" runs the bayes plugin") {
		t.Errorf("learn with no bayes stage: %d %q %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "none.bayes.db")); err != nil {
		t.Errorf("no store beside state.path: %v", err)
	}
	os.Remove(filepath.Join(dir, "none.bayes.db"))
	// A named stage that runs bayes is used, with its own state file.
	code, out, errs = runBayesCmd("stats", "--stage", "spamB", "-c", cfg)
	if code != exitOK || !strings.Contains(out, "other.spamB.db") {
		t.Errorf("stats --stage spamB: %d %q %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "other.spamA.db")); err == nil {
		t.Error("stats --stage spamB opened spamA's store")
	}
}

// TestBayesUsageSaysWhy: bad usage says what is wrong on its first line.
func TestBayesUsageSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "portcullis bayes: missing subcommand (learn, classify or stats)\n"},
		{[]string{"frobnicate"}, `portcullis bayes: unknown subcommand "frobnicate" (want learn, classify or stats)` + "\n"},
		{[]string{"classify", "-c", "x.yaml"}, "portcullis bayes classify: missing PATH\n"},
		{[]string{"classify", "--spam", "a"}, "portcullis bayes classify: --spam and --ham go with learn\n"},
		{[]string{"learn", "-c", "x.yaml"}, "portcullis bayes learn: missing --spam PATH or --ham PATH\n"},
		{[]string{"learn", "stray"}, "portcullis bayes learn: say --spam or --ham before stray\n"},
		{[]string{"stats", "x"}, "portcullis bayes stats: takes no PATH, got x\n"},
		{[]string{"stats", "-c"}, "portcullis bayes stats: -c needs a value\n"},
		{[]string{"learn", "--spam", "a", "--bogus"}, "portcullis bayes learn: unknown flag --bogus\n"},
	} {
		code, _, errs := runBayesCmd(tc.args...)
		if code != exitUsage || !strings.HasPrefix(errs, tc.want) || !strings.Contains(errs, "usage: portcullis bayes") {
			t.Errorf("bayes %q: exit %d, stderr %q; want 2, %q first, then the usage", tc.args, code, errs, tc.want)
		}
	}
}
