package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRunStartProblems: when the rule files or the stages' configs have
// problems, `run` prints each on a line of its own on stderr, in the words
// and at the positions `check` prints them, and not as one log line with
// the problems joined by a literal \n.
func TestRunStartProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		return writeTestFile(t, filepath.Join(dir, name), text)
	}
	base := "hostname: mx.example.test\nlisteners: [{name: mx, address: '127.0.0.1:0'}]\nqueue: {dir: spool}\n"
	write("r.d/a.yaml", "rules:\n  - {name: y, when: 'results.nope.verdict == \"fail\"', action: reject}\n")
	rulesCfg := write("rules.yaml", base+"include: ['r.d/*.yaml', 'missing.yaml']\nrules:\n  - {name: x, when: 'conn.ipp == \"\"', action: reject}\n")
	stagesCfg := write("stages.yaml", base+`stages:
  - {name: av, plugin: antivirus, config: {clamd: "tcp:nohost"}}
  - {name: tf, plugin: textfilter, config: {bogus: 1}}
`)
	for _, cfg := range []string{rulesCfg, stagesCfg} {
		t.Run(filepath.Base(cfg), func(t *testing.T) {
			code, want, _ := run("check", "-c", cfg)
			if code != exitFailed || strings.Count(want, "\n") < 2 {
				t.Fatalf("check found no problems to compare with: %d %q", code, want)
			}
			cmd := exec.Command(portcullisBinary(t), "run", "-c", cfg)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err == nil {
				t.Fatal("run started")
			}
			if strings.Contains(stderr.String(), `\n`) {
				t.Errorf("problems joined by a literal \\n:\n%s", stderr.String())
			}
			lines := strings.Split(stderr.String(), "\n")
			for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
				if !slices.Contains(lines, line) {
					t.Errorf("check's\n %s\nis not a line of run's stderr:\n%s", line, stderr.String())
				}
			}
		})
	}
}

// TestRunStoreErrorNamed: a spool directory that cannot be made is named
// by its config key, without the store's "queue: " a second time.
func TestRunStoreErrorNamed(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "file"), "not a directory\n")
	cfg := writeTestFile(t, filepath.Join(dir, "p.yaml"),
		"hostname: mx.example.test\nlisteners: [{name: mx, address: '127.0.0.1:0'}]\nqueue: {dir: file/spool}\n")
	cmd := exec.Command(portcullisBinary(t), "run", "-c", cfg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	want := `err="daemon: queue.dir: stat ` + filepath.Join(dir, "file/spool") + `: not a directory"`
	if err == nil || !strings.Contains(stderr.String(), want) {
		t.Errorf("run: %v\n%s\nwant a line with %s", err, stderr.String(), want)
	}
	if _, err := os.Stat(filepath.Join(dir, "quarantine")); err == nil {
		t.Error("the quarantine was made although the queue could not be")
	}
}
