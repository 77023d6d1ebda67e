package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// scanProbeSetup builds testdata/scanprobe (once under its own name, which
// runs at every phase, and once as scanprobe-connect) and writes a config
// whose rules read what the probes saw.
func scanProbeSetup(t *testing.T, limits string) (dir, cfg string) {
	t.Helper()
	dir = t.TempDir()
	probe := filepath.Join(dir, "scanprobe")
	if out, err := exec.Command("go", "build", "-o", probe, "./testdata/scanprobe").CombinedOutput(); err != nil {
		t.Fatalf("building scanprobe: %v\n%s", err, out)
	}
	if err := os.Link(probe, probe+"-connect"); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "rules.yaml"), `stages:
  - {name: early, plugin: `+probe+`-connect}
  - {name: probe, plugin: `+probe+`}
rules:
  - {name: helo_at_connect, when: 'results.early.attrs.helo != "" && conn.ip == "192.0.2.9"', action: reject, reply: '550 5.7.1 HELO seen at connect'}
  - {name: slow_down, when: 'conn.ip == "198.51.100.7"', action: tempfail, reply: '451 4.7.1 Slow down'}
  - {name: rule_error, when: 'rcpt == "boom@example.test" && int(results.early.attrs.missing) > 1', action: reject}
  - {name: mx_only, when: 'conn.listener != "mx" && conn.ip == "192.0.2.9"', action: reject, reply: '550 5.7.1 not on mx'}
`)
	cfg = filepath.Join(dir, "portcullis.yaml")
	writeTestFile(t, cfg, "hostname: mx.example.test\nlisteners: [{name: mx, address: '127.0.0.1:2525'}]\n"+
		"relay: {domains: [example.test], networks: ['127.0.0.0/8']}\n"+scanDNS(t)+limits+"include: [rules.yaml]\n")
	return dir, cfg
}

func scanJSON(t *testing.T, args ...string) *scanReport {
	t.Helper()
	code, out, errs := run(append([]string{"scan", "--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep scanReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return &rep
}

// TestScanParity: what scan hands stages and rules is what a session
// does: no HELO before the HELO command, the listener's name, the address
// in the session's form, addresses without brackets, our Received field
// first in the header (and counted in msg.size), a header that does not
// parse to the end, and the session's answers for what the pipeline does
// not decide (a rule that fails, a 4xx before the greeting).
func TestScanParity(t *testing.T) {
	dir, cfg := scanProbeSetup(t, "")
	body := "From: a@sender.example\nSubject: hi\n\nbody\n"
	msg := writeTestFile(t, filepath.Join(dir, "m.eml"), body)

	t.Run("envelope and message", func(t *testing.T) {
		rep := scanJSON(t, "-c", cfg, "--ip", "::ffff:192.0.2.9", "--from", "<a@sender.example>", "--rcpt", "<b@example.test>", msg)
		if rep.Action != "accept" || rep.Rule != "" {
			t.Fatalf("action %s (rule %s, %s), want accept", rep.Action, rep.Rule, rep.Reply)
		}
		if h := rep.Stages["early"].Attrs["helo"]; h != "" {
			t.Errorf("a connect stage saw HELO %q before the HELO command", h)
		}
		a := rep.Stages["probe"].Attrs
		wantSize := len(strings.ReplaceAll(body, "\n", "\r\n"))
		size, _ := strconv.Atoi(a["size"])
		for k, want := range map[string]string{"ip": "192.0.2.9", "helo": "client.example", "listener": "mx",
			"from": "a@sender.example", "rcpts": "b@example.test", "fields": "3", "subject": "hi"} {
			if a[k] != want {
				t.Errorf("%s = %q, want %q", k, a[k], want)
			}
		}
		if r := a["received"]; !strings.HasPrefix(r, "from client.example (unknown [192.0.2.9])") ||
			!strings.Contains(r, "by mx.example.test (Portcullis) with ESMTP id SCAN") || !strings.Contains(r, "for <b@example.test>;") {
			t.Errorf("received %q", r)
		}
		if extra := size - wantSize; extra < len("Received: from client.example") {
			t.Errorf("msg size %d for a %d-byte message: the Received field is not counted", size, wantSize)
		}
	})
	t.Run("ipv6 canonical", func(t *testing.T) {
		rep := scanJSON(t, "-c", cfg, "--ip", "2001:DB8:0::1", msg)
		if a := rep.Stages["probe"].Attrs; a["ip"] != "2001:db8::1" || !strings.Contains(a["received"], "[IPv6:2001:db8::1]") {
			t.Errorf("attrs %v", a)
		}
	})
	t.Run("rule failing at run time", func(t *testing.T) {
		rep := scanJSON(t, "-c", cfg, "--rcpt", "boom@example.test", "--rcpt", "b@example.test", msg)
		var got string
		for _, p := range rep.Phases {
			if p.Rcpt == "boom@example.test" {
				got = p.Action + " " + p.Reply
			}
		}
		if got != "tempfail 451 4.3.0 Temporary local problem, try again later" || rep.Action != "accept" {
			t.Errorf("boom: %q, final %s", got, rep.Action)
		}
		rep = scanJSON(t, "-c", cfg, "--rcpt", "boom@example.test", msg)
		if rep.Action != "tempfail" || !strings.HasPrefix(rep.Reply, "451 4.3.0") || !strings.Contains(rep.Reason, `rule "rule_error"`) {
			t.Errorf("only boom: %s %q %q", rep.Action, rep.Reply, rep.Reason)
		}
		// The text output says why too: no rule decided, the rule's error did.
		if _, out, _ := run("scan", "-c", cfg, "--rcpt", "boom@example.test", msg); !strings.Contains(out, "\nreason: ") ||
			!strings.Contains(out, `rule "rule_error"`) {
			t.Errorf("text output without the reason:\n%s", out)
		}
	})
	t.Run("tempfail before the greeting is 421", func(t *testing.T) {
		rep := scanJSON(t, "-c", cfg, "--ip", "198.51.100.7", msg)
		if rep.Action != "tempfail" || rep.Reply != "421 4.7.1 Slow down" {
			t.Errorf("%s %q", rep.Action, rep.Reply)
		}
	})
	for name, text := range map[string]string{
		"mbox From line": "From a@sender.example Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n",
		"header only":    "Subject: only a header",
		"no header":      "\njust a body\n",
	} {
		t.Run("unparsable header: "+name, func(t *testing.T) {
			m := writeTestFile(t, filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".eml"), text)
			rep := scanJSON(t, "-c", cfg, m)
			if rep.Action != "accept" || rep.Stages["probe"] == nil {
				t.Errorf("%s %+v", rep.Action, rep.Stages)
			}
		})
	}
}

func TestScanOverSizeLimit(t *testing.T) {
	dir, cfg := scanProbeSetup(t, "limits: {max_message_bytes: 100}\n")
	msg := writeTestFile(t, filepath.Join(dir, "big.eml"), "Subject: big\n\n"+strings.Repeat("x", 200)+"\n")
	rep := scanJSON(t, "-c", cfg, msg)
	if rep.Action != "reject" || rep.Reply != "552 5.3.4 Message size exceeds fixed limit" || rep.Stages["probe"].Phase == "data" {
		t.Errorf("%s %q, probe %+v", rep.Action, rep.Reply, rep.Stages["probe"])
	}
}

// TestScanMaxHops: scan refuses a looping message as the session does.
func TestScanMaxHops(t *testing.T) {
	dir, cfg := scanProbeSetup(t, "limits: {max_hops: 3}\n")
	hops := strings.Repeat("Received: from a by b; Fri, 27 Nov 2026 12:00:00 +0000\n", 3)
	msg := writeTestFile(t, filepath.Join(dir, "loop.eml"), hops+"Subject: loop\n\nbody\n")
	rep := scanJSON(t, "-c", cfg, msg)
	if rep.Action != "reject" || !strings.HasPrefix(rep.Reply, "554 5.4.6 Too many hops (3 Received fields)") || rep.Stages["probe"].Phase == "data" {
		t.Errorf("%s %q, probe %+v", rep.Action, rep.Reply, rep.Stages["probe"])
	}
	ok := writeTestFile(t, filepath.Join(dir, "ok.eml"), hops[:len(hops)/3*2]+"Subject: ok\n\nbody\n")
	if rep := scanJSON(t, "-c", cfg, ok); rep.Action != "accept" {
		t.Errorf("two hops: %s %q", rep.Action, rep.Reply)
	}
}

func TestScanBadEnvelopeFlags(t *testing.T) {
	_, cfg := scanProbeSetup(t, "")
	for _, args := range [][]string{
		{"--ip", "not-an-ip"}, {"--ip", "192.0.2.300"}, {"--from", "a b@example.test"}, {"--rcpt", "nobody"}, {"--rcpt", "x@"},
	} {
		code, _, errs := run(append(append([]string{"scan", "-c", cfg}, args...), "m.eml")...)
		if code != exitUsage || !strings.Contains(errs, args[0]) {
			t.Errorf("%v: exit %d, %q; want %d naming the flag", args, code, errs, exitUsage)
		}
	}
}
