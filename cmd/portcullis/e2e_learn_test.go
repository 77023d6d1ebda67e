package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// learnRules has the built-in bayes stage (verdicts only after 10 spam and
// 10 ham, so that the guard can be reached cheaply) and the two learn rules.
const learnRules = `stages:
  - {name: bayes, plugin: bayes, config: {min_spam: 10, min_ham: 10}}
rules:
  - {name: teach-spam, when: 'msg.subject contains "[learn-spam]"', action: learn_spam}
  - {name: teach-ham, when: 'msg.subject contains "[learn-ham]"', action: learn_ham}
`

// Vocabularies far apart, so that a pre-trained classifier is sure.
const (
	spamWords = "casino jackpot lottery winner prize bitcoin pills discount viagra wire-transfer"
	hamWords  = "meeting agenda quarterly minutes invoice review schedule project deadline lunch"
)

// learnMsg is a message with a Message-ID and body of its own.
func learnMsg(subject, words string, i int) string {
	return fmt.Sprintf("From: a@example.org\r\nTo: b@example.test\r\nSubject: %s %d\r\nMessage-ID: <learn-%s-%d@client.example.org>\r\n\r\n%s\r\nnumber %d token u%dq\r\n",
		subject, i, strings.Trim(subject, "[]"), i, words, i, i)
}

var statsRE = regexp.MustCompile(`(?m)^(spam|ham) learned:\s+(\d+)`)

// bayesCounts is what `portcullis bayes stats` says was learned.
func bayesCounts(t *testing.T, cfg string) (spam, ham int) {
	t.Helper()
	out := portcullisCLI(t, "bayes", "stats", "-c", cfg)
	m := statsRE.FindAllStringSubmatch(out, -1)
	if len(m) != 2 {
		t.Fatalf("bayes stats output:\n%s", out)
	}
	spam, _ = strconv.Atoi(m[0][2])
	ham, _ = strconv.Atoi(m[1][2])
	return spam, ham
}

// waitLearned waits until the gateway has logged n learn events.
func waitLearned(t *testing.T, g *gateway, n int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if logs := g.logs(); strings.Count(logs, `msg="bayes autolearn"`) >= n {
			return logs
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("fewer than %d learn events logged:\n%s", n, g.logs())
	return ""
}

// lastLearnLine is the gateway's log line of the last learn event.
func lastLearnLine(logs string) string {
	lines := strings.Split(logs, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], `msg="bayes autolearn"`) {
			return lines[i]
		}
	}
	return ""
}

// TestE2ELearnActions runs `portcullis run` with learn_spam / learn_ham
// rules over the built-in bayes stage and reads the counts back with
// `portcullis bayes stats`.
func TestE2ELearnActions(t *testing.T) {
	hop := startNextHop(t, true)
	cfg, dir := e2eSetup(t, hop, map[string]string{"rules.yaml": learnRules})
	appendFile(t, cfg, "state: {path: state}\n")
	if s, h := bayesCounts(t, cfg); s != 0 || h != 0 {
		t.Fatalf("fresh state has %d spam %d ham", s, h)
	}
	g := startGateway(t, cfg)
	const nspam, nham = 3, 2
	events := 0
	// A learning message waits for its learn event before the next is
	// sent: the gateway runs at most four learns at once and skips a fifth
	// ("learning skipped: too many in progress"), and on a busy machine
	// five back-to-back messages found four still running.
	send := func(t *testing.T, msg string, learn bool) {
		t.Helper()
		if r := sendOne(g.addr, "b@example.test", msg); r.code != 250 {
			t.Fatalf("reply %v, want 250\n%s", r, g.logs())
		}
		if learn {
			events++
			waitLearned(t, g, events)
		}
	}
	t.Run("learned by the rules", func(t *testing.T) {
		for i := range nspam {
			send(t, learnMsg("[learn-spam]", spamWords, i), true)
		}
		send(t, learnMsg("neither", spamWords, 99), false)
		for i := range nham {
			send(t, learnMsg("[learn-ham]", hamWords, i), true)
		}
		logs := waitLearned(t, g, events)
		if s, h := bayesCounts(t, cfg); s != nspam || h != nham {
			t.Fatalf("bayes stats: %d spam %d ham, want %d %d\n%s", s, h, nspam, nham, logs)
		}
	})
	t.Run("a message learned twice counts once", func(t *testing.T) {
		send(t, learnMsg("[learn-spam]", spamWords, 0), true)
		logs := waitLearned(t, g, events)
		if line := lastLearnLine(logs); !strings.Contains(line, "learned=false") {
			t.Errorf("repeat learned: %s", line)
		}
		if s, h := bayesCounts(t, cfg); s != nspam || h != nham {
			t.Fatalf("after a repeat: %d spam %d ham, want %d %d", s, h, nspam, nham)
		}
	})
	t.Run("the guard refuses what the classifier is sure of", func(t *testing.T) {
		pretrain(t, cfg, dir, 12)
		s0, h0 := bayesCounts(t, cfg)
		send(t, learnMsg("[learn-ham]", spamWords, 50), true)
		logs := waitLearned(t, g, events)
		if line := lastLearnLine(logs); !strings.Contains(line, "learned=false") || !strings.Contains(line, "refused: classifier says spam") {
			t.Errorf("spam marked learn_ham: %s", line)
		}
		if s, h := bayesCounts(t, cfg); s != s0 || h != h0 {
			t.Fatalf("after a refused learn: %d spam %d ham, want %d %d", s, h, s0, h0)
		}
	})
	t.Run("a reload moves learning to the new stage", func(t *testing.T) {
		// The old stage's store, read after the rename through a config
		// that still declares it (the bayes commands refuse a stage that
		// no rule file has).
		oldCfg := filepath.Join(dir, "old-portcullis.yaml")
		text, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "old-stage.yaml"), []byte(learnRules), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(oldCfg, []byte(strings.Replace(string(text), `"rules*.yaml"`, `"old-stage.yaml"`, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		renamed := strings.Replace(learnRules, "name: bayes,", "name: bayes2,", 1)
		if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(renamed), 0o600); err != nil {
			t.Fatal(err)
		}
		_ = g.cmd.Process.Signal(syscall.SIGHUP)
		waitLog(t, g, "msg=reloaded")
		s0, h0 := bayesCounts(t, oldCfg)
		send(t, learnMsg("[learn-spam]", spamWords, 60), true)
		logs := waitLearned(t, g, events)
		if line := lastLearnLine(logs); !strings.Contains(line, "stage=bayes2") || !strings.Contains(line, "learned=true") {
			t.Errorf("after the reload: %s", line)
		}
		out := portcullisCLI(t, "bayes", "stats", "-c", cfg, "--stage", "bayes2")
		if !regexp.MustCompile(`(?m)^spam learned:\s+1 `).MatchString(out) {
			t.Errorf("bayes2 stats:\n%s", out)
		}
		if s, h := bayesCounts(t, oldCfg); s != s0 || h != h0 {
			t.Errorf("the old stage learned after the reload: %d %d, was %d %d", s, h, s0, h0)
		}
	})
	if strings.Contains(g.logs(), "learning failed") || strings.Contains(g.logs(), "learning skipped") {
		t.Errorf("learning errors:\n%s", g.logs())
	}
}

// pretrain teaches n spam and n ham with `portcullis bayes learn`, so the
// classifier gives verdicts (min_spam and min_ham are 10).
func pretrain(t *testing.T, cfg, dir string, n int) {
	t.Helper()
	for _, class := range []struct{ name, words string }{{"spam", spamWords}, {"ham", hamWords}} {
		d := filepath.Join(dir, "train-"+class.name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			msg := learnMsg("train-"+class.name, class.words, 1000+i)
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("%d.eml", i)), []byte(msg), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	portcullisCLI(t, "bayes", "learn", "-c", cfg, "--spam", filepath.Join(dir, "train-spam"), "--ham", filepath.Join(dir, "train-ham"))
}

// TestCheckLearnWithoutBayes: learn_* rules with no bayes stage are a
// `portcullis check` problem at the rule, and `run`, a reload and `scan`
// refuse them likewise (they started, and failed on every such message).
func TestCheckLearnWithoutBayes(t *testing.T) {
	hop := startNextHop(t, true)
	rules := "rules:\n  - {name: teach, when: 'msg.subject contains \"x\"', action: learn_spam}\n"
	cfg, _ := e2eSetup(t, hop, map[string]string{"rules.yaml": rules})
	const problem = "rules.yaml:2:5: action learn_spam needs a stage with plugin: bayes to train"
	code, out, _ := run("check", "-c", cfg)
	if code != exitFailed || !strings.Contains(out, problem) {
		t.Fatalf("check: %d %q", code, out)
	}
	// The pipeline run, a reload and scan build (loadPipeline).
	msg := writeTestFile(t, filepath.Join(filepath.Dir(cfg), "m.eml"), "Subject: x\n\nbody\n")
	code, _, errs := run("scan", "-c", cfg, msg)
	if code == exitOK || !strings.Contains(errs, problem) {
		t.Fatalf("scan: %d %q", code, errs)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
