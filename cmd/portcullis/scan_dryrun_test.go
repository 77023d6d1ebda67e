package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/plugins/greylist"
)

// TestScanChangesNoState: `portcullis scan` is a dry run. Scanning the
// same message twice through a greylist stage says "new triplet" both
// times and leaves no triplet in the state file the daemon shares; a
// learn_spam rule is reported, and nothing is learned (the bayes stage's
// file is not even created).
func TestScanChangesNoState(t *testing.T) {
	bin := portcullisBinary(t)
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "rules.yaml"), `stages:
  - {name: grey, plugin: greylist, timeout: 5s, config: {delay: 5m}}
  - {name: words, plugin: bayes, timeout: 5s}
rules:
  - {name: greylisted, when: 'results.grey.verdict == "fail"', action: tempfail,
     reply: '451 4.7.1 Greylisted, try again in {{results.grey.attrs.retry_after}} seconds'}
  - {name: teach, when: 'msg.subject contains "[learn]"', action: learn_spam}
`)
	cfg := writeTestFile(t, filepath.Join(dir, "portcullis.yaml"), "hostname: mx.example.test\n"+
		"listeners: [{name: mx, address: '127.0.0.1:2525'}]\n"+
		"relay: {domains: [example.test]}\n"+scanDNS(t)+
		"state: {path: "+filepath.Join(dir, "state.db")+"}\n"+
		"include: [rules.yaml]\n")
	msg := writeTestFile(t, filepath.Join(dir, "m.eml"), "From: a@ext.test\nTo: u@example.test\nSubject: [learn] hello\n\nbody\n")
	scan := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"scan", "-c", cfg}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("scan %q: %v\n%s", args, err, out)
		}
		return string(out)
	}

	greyArgs := []string{"--ip", "198.51.100.7", "--from", "a@ext.test", "--rcpt", "u@example.test", msg}
	for i := range 2 {
		out := scan(greyArgs...)
		if !strings.Contains(out, `reason="greylisted: new triplet"`) ||
			!strings.Contains(out, "action: tempfail (rule greylisted) 451 4.7.1 Greylisted, try again in 300 seconds") {
			t.Fatalf("scan %d:\n%s", i+1, out)
		}
	}
	st, err := greylist.OpenBolt(filepath.Join(dir, "state.grey.db"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	_, found, err := st.Get(context.Background(), "t|198.51.100.0/24|a@ext.test|u@example.test")
	st.Close()
	if err != nil || found {
		t.Fatalf("the scans recorded the triplet (found %v, err %v)", found, err)
	}

	// Without the greylist the message reaches the data phase, where the
	// rule learns: scan reports it, and only the daemon learns.
	writeTestFile(t, filepath.Join(dir, "rules.yaml"), `stages:
  - {name: words, plugin: bayes, timeout: 5s}
rules:
  - {name: teach, when: 'msg.subject contains "[learn]"', action: learn_spam}
`)
	out := scan("--rcpt", "u@example.test", msg)
	if !strings.Contains(out, "tags: learn:spam") || !strings.Contains(out, "action: accept") {
		t.Fatalf("learn_spam not reported:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.words.db")); !os.IsNotExist(err) {
		t.Fatalf("scan wrote the bayes state file (stat: %v)", err)
	}
}
