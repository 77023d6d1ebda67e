package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// helloPlugin builds examples/plugin-hello into a test directory: a real
// plugin process (the go build cache makes the second build a link only).
func helloPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "plugin-hello")
	if out, err := exec.Command("go", "build", "-o", bin, "../../examples/plugin-hello").CombinedOutput(); err != nil {
		t.Fatalf("building plugin-hello: %v\n%s", err, out)
	}
	return bin
}

// scanSetup writes a config whose rules act on plugin-hello's facts.
func scanSetup(t *testing.T) (dir, cfg, plugin string) {
	dir, plugin = t.TempDir(), helloPlugin(t)
	rules := `stages:
  - {name: hello, plugin: ` + plugin + `, timeout: 5s, config: {greeting: hi there}}
rules:
  - {name: blocked_ip, when: 'cidr(conn.ip, "203.0.113.0/24")', action: reject}
  - {name: no_abuse, when: 'rcpt startsWith "abuse@"', action: reject, reply: '550 5.1.1 <{{rcpt}}> no such user'}
  - {name: hello_reject, when: 'results.hello.verdict == "fail"', action: reject, reply: '550 5.7.1 Rejected ({{results.hello.attrs.greeting}})'}
  - {name: hello_tag, when: '"hello:tag" in results.hello.tags', action: tag, subject_prefix: '[TAG] '}
  - {name: hello_quarantine, when: 'has_tag(results.hello, "hello:quarantine")', action: quarantine}
`
	writeTestFile(t, filepath.Join(dir, "rules.d/hello.yaml"), rules)
	cfg = filepath.Join(dir, "portcullis.yaml")
	writeTestFile(t, cfg, "hostname: mx.example.test\nlisteners: [{name: mx, address: '127.0.0.1:2525'}]\nrelay: {domains: [example.test], networks: ['127.0.0.0/8']}\ninclude: ['rules.d/*.yaml']\n"+scanDNS(t))
	return dir, cfg, plugin
}

func writeTestFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestScan(t *testing.T) {
	dir, cfg, _ := scanSetup(t)
	msg := func(subject string) string {
		return writeTestFile(t, filepath.Join(dir, strings.Trim(subject, "[]")+".eml"),
			"From: a@sender.example\nTo: b@example.test\nSubject: "+subject+"\n\nhello body\n")
	}
	tests := []struct {
		name string
		args []string
		want []string // lines the output must contain
	}{
		{"reject by stage result", []string{"--rcpt", "b@example.test", msg("[reject-me]")}, []string{
			`stage hello (data): fail score=0 tags=hello:reject body_bytes="12" greeting="hi there" reason="the subject asks to be rejected"`,
			"phase connect: continue", "phase rcpt <b@example.test>: continue",
			`phase data: reject (rule hello_reject) "550 5.7.1 Rejected (hi there)"`,
			"header: add X-Hello: hi there",
			"action: reject (rule hello_reject) 550 5.7.1 Rejected (hi there)"}},
		{"tag then accept", []string{"--from", "a@sender.example", msg("[tag-me]")}, []string{
			"phase rcpt <postmaster@example.test>: continue", `subject prefix: "[TAG] "`, "tags: tag:hello_tag", "action: accept"}},
		{"quarantine", []string{msg("[quarantine-me]")}, []string{"action: quarantine (rule hello_quarantine)"}},
		{"one recipient refused", []string{"--rcpt", "abuse@example.test", "--rcpt", "b@example.test", msg("plain")}, []string{
			`phase rcpt <abuse@example.test>: reject (rule no_abuse) "550 5.1.1 <abuse@example.test> no such user"`,
			"phase data: continue", "action: accept"}},
		// A quoted local part reaches the rules unquoted, as go-smtp hands
		// it to the session's.
		{"quoted local part", []string{"--rcpt", `"abuse"@example.test`, msg("plain")}, []string{
			"action: reject (rule no_abuse) 550 5.1.1 <abuse@example.test> no such user"}},
		{"every recipient refused", []string{"--rcpt", "abuse@example.test", msg("plain")}, []string{
			"action: reject (rule no_abuse) 550 5.1.1 <abuse@example.test> no such user"}},
		{"options after the message", []string{msg("plain"), "--rcpt", "abuse@example.test"}, []string{
			"action: reject (rule no_abuse) 550 5.1.1 <abuse@example.test> no such user"}},
		{"refused at connect", []string{"--ip", "203.0.113.5", msg("plain")}, []string{
			"phase connect: reject (rule blocked_ip)", "action: reject (rule blocked_ip) 554 5.7.1 Message rejected by policy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := run(append([]string{"scan", "-c", cfg}, tc.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w+"\n") && !strings.Contains(out, w+" ") {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		code, out, errs := run("scan", "-c", cfg, "--json", "--ip", "127.0.0.1", msg("[reject-me]"))
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var rep scanReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		h := rep.Stages["hello"]
		if rep.Action != "reject" || rep.Rule != "hello_reject" || h == nil || h.Verdict != "fail" || h.Attrs["greeting"] != "hi there" || len(rep.Phases) != 5 {
			t.Errorf("report %+v", rep)
		}
		if len(rep.Headers) != 1 || rep.Headers[0] != (headerReport{"add", "X-Hello", "hi there"}) {
			t.Errorf("headers %+v", rep.Headers)
		}
	})
}

func TestScanFailures(t *testing.T) {
	dir, cfg, plugin := scanSetup(t)
	msg := writeTestFile(t, filepath.Join(dir, "m.eml"), "Subject: x\n\nbody\n")
	badPlugin := writeTestFile(t, filepath.Join(dir, "bad.yaml"), "hostname: mx.example.test\nlisteners: [{name: mx, address: '127.0.0.1:2525'}]\n"+
		"stages: [{name: hello, plugin: "+plugin+", config: {colour: red}}]\n")
	badRules := writeTestFile(t, filepath.Join(dir, "badrules.yaml"), "hostname: mx.example.test\nlisteners: [{name: mx, address: '127.0.0.1:2525'}]\n"+
		"rules: [{name: x, action: explode}]\n")
	tests := []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"no message", []string{"scan", "-c", cfg}, exitUsage, "portcullis scan: missing MSG.eml\nusage: portcullis scan"},
		{"two messages", []string{"scan", "-c", cfg, msg, msg}, exitUsage, "portcullis scan: one MSG.eml at a time, got 2: " + msg + " " + msg + "\nusage: portcullis scan"},
		{"missing message", []string{"scan", "-c", cfg, filepath.Join(dir, "none.eml")}, exitFailed, "no such file"},
		{"plugin refuses config", []string{"scan", "-c", badPlugin, msg}, exitFailed, "colour"},
		{"options after the message are options", []string{"scan", msg, "-c", badPlugin}, exitFailed, "colour"},
		{"bad rules", []string{"scan", "-c", badRules, msg}, exitFailed, `badrules.yaml:3:27: bad action "explode"`},
		// The session answers 553 5.1.7 to these senders (atInSenderDomain).
		{"unquoted @ in the sender's local part", []string{"scan", "-c", cfg, "--from", "bad@@example.org", msg}, exitUsage, "an '@' in the local part must be quoted"},
		{"unquoted @ after a source route", []string{"scan", "-c", cfg, "--from", "<@relay.example:a@b@example.org>", msg}, exitUsage, "an '@' in the local part must be quoted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := run(tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.inStderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errs, tc.code, tc.inStderr)
			}
		})
	}
}

// scanDNS is the dns: line of a scan test's config: an in-process server
// on 127.0.0.1 with no records, since scan looks up conn.hostname as a
// session does (tests send DNS nowhere else).
func scanDNS(t *testing.T) string {
	t.Helper()
	return "dns: {servers: ['" + dnsutiltest.New(t).Addr + "'], timeout: 1s}\n"
}

// TestScanReplyAsSent: scan shows a rule's reply as a session sends it to
// a client without SMTPUTF8 (RFC 5321 4.2: ASCII, so a decoded Japanese
// subject in the template becomes '?'), cut to a reply line, not as the
// template made it.
func TestScanReplyAsSent(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "rules.d/r.yaml"), `rules:
  - {name: subj, phase: data, when: 'msg.subject contains "週末"', action: reject, reply: '550 5.7.1 refused: {{msg.subject}} {{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}{{msg.subject}}'}
`)
	cfg := writeTestFile(t, filepath.Join(dir, "portcullis.yaml"), "hostname: mx.example.test\nlisteners: [{name: mx, address: '127.0.0.1:2525'}]\n"+
		"relay: {domains: [example.test], networks: ['127.0.0.0/8']}\ninclude: ['rules.d/*.yaml']\n"+scanDNS(t))
	msg := writeTestFile(t, filepath.Join(dir, "m.eml"), "From: a@sender.example\nTo: b@example.test\nSubject: =?UTF-8?B?6YCx5pyr44Gu44GK55+l44KJ44Gb?=\n\nbody\n")
	code, out, errs := run("scan", "-c", cfg, msg)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	line := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "action: ") {
			line = strings.TrimPrefix(strings.TrimPrefix(l, "action: reject (rule subj) "), "action: ")
		}
	}
	if !strings.HasPrefix(line, "550 5.7.1 refused: ??????? ") || len(line)+2 > 512 {
		t.Errorf("reply as scan shows it (%d octets): %q", len(line), line)
	}
}
