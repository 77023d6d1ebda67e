package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// relayPolicySetup writes a config that trusts 10.0.0.0/8 only, takes mail
// for example.test (whose valid addresses relay.recipients lists) and has
// no stages: whatever scan refuses, the relay policy refused.
func relayPolicySetup(t *testing.T) (dir, cfg, msg string) {
	dir = t.TempDir()
	writeTestFile(t, filepath.Join(dir, "recipients.txt"), "b@example.test\n")
	cfg = writeTestFile(t, filepath.Join(dir, "portcullis.yaml"), "hostname: mx.example.test\n"+
		"listeners: [{name: mx, address: '127.0.0.1:2525'}]\n"+
		"relay: {domains: ['*.wild.example', example.test], networks: ['10.0.0.0/8'], recipients: recipients.txt}\n"+scanDNS(t))
	msg = writeTestFile(t, filepath.Join(dir, "m.eml"), "From: a@sender.example\nSubject: hi\n\nbody\n")
	return dir, cfg, msg
}

// TestScanRelayPolicy: scan refuses at RCPT what a session on the first
// listener refuses (relay.networks, relay.domains, relay.recipients), with
// the session's reply, and rejects the message when no recipient is left.
func TestScanRelayPolicy(t *testing.T) {
	_, cfg, msg := relayPolicySetup(t)
	const denied = "554 5.7.1 <carol@elsewhere.example>: Relay access denied"
	tests := []struct {
		name string
		args []string
		want []string // lines (or line starts) the output must contain
	}{
		{"untrusted client, foreign recipient", []string{"--ip", "203.0.113.9", "--rcpt", "carol@elsewhere.example"}, []string{
			`phase rcpt <carol@elsewhere.example>: reject "` + denied + `"`, "action: reject " + denied}},
		{"trusted client relays", []string{"--ip", "10.1.2.3", "--rcpt", "carol@elsewhere.example"}, []string{
			"phase rcpt <carol@elsewhere.example>: continue", "action: accept"}},
		{"unknown local recipient", []string{"--ip", "203.0.113.9", "--rcpt", "nobody@example.test"}, []string{
			"action: reject 550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown"}},
		{"one recipient left", []string{"--ip", "203.0.113.9", "--rcpt", "carol@elsewhere.example", "--rcpt", "b@example.test"}, []string{
			`phase rcpt <carol@elsewhere.example>: reject "` + denied + `"`, "phase rcpt <b@example.test>: continue",
			"phase data: continue", "action: accept"}},
		{"default recipient is the Postmaster of the first plain relay domain", []string{"--ip", "203.0.113.9"}, []string{
			"phase rcpt <postmaster@example.test>: continue", "action: accept"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := run(append([]string{"scan", "-c", cfg}, append(tc.args, msg)...)...)
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
		rep := scanJSON(t, "-c", cfg, "--ip", "203.0.113.9", "--rcpt", "carol@elsewhere.example", msg)
		if rep.Action != "reject" || rep.Reply != denied || len(rep.Phases) != 4 || rep.Phases[3].Reply != denied {
			t.Errorf("report %+v", rep)
		}
	})
}

// TestScanRelayParity: for an untrusted client, scan's reply to each
// recipient is the one the running daemon sends at RCPT.
func TestScanRelayParity(t *testing.T) {
	hop := startNextHop(t, true)
	cfg, dir := e2eSetup(t, hop, nil)
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "recipients.txt"), "b@example.test\n")
	writeTestFile(t, cfg, strings.Replace(string(text), "relay:\n", "relay:\n  recipients: recipients.txt\n", 1))
	msg := writeTestFile(t, filepath.Join(dir, "m.eml"), subjectMsg("parity"))
	g := startGateway(t, cfg)
	for _, rcpt := range []string{"carol@elsewhere.example", "nobody@example.test", "b@example.test", "postmaster@example.test"} {
		t.Run(rcpt, func(t *testing.T) {
			daemon := sendUntrusted(t, g.addr, rcpt)
			rep := scanJSON(t, "-c", cfg, "--ip", "127.0.0.2", "--from", "a@example.org", "--rcpt", rcpt, msg)
			if daemon.code == 250 {
				if rep.Action != "accept" {
					t.Errorf("daemon accepted, scan says %s %q", rep.Action, rep.Reply)
				}
				return
			}
			if rep.Reply != daemon.String() || rep.Action != "reject" {
				t.Errorf("daemon %q, scan %s %q", daemon, rep.Action, rep.Reply)
			}
		})
	}
}

// TestScanDefaultRecipientNotJudged: with no --rcpt, scan runs the stages
// and rules on the message whatever relay.domains says: a config made to
// try out a rule file need not describe the gateway's domains.
func TestScanDefaultRecipientNotJudged(t *testing.T) {
	dir, _, _ := scanSetup(t)
	cfg := writeTestFile(t, filepath.Join(dir, "bare.yaml"),
		"hostname: mx.example.test\nlisteners: [{name: mx, address: '127.0.0.1:2525'}]\ninclude: ['rules.d/*.yaml']\n"+scanDNS(t))
	m := writeTestFile(t, filepath.Join(dir, "q.eml"), "Subject: [quarantine-me]\n\nbody\n")
	code, out, errs := run("scan", "-c", cfg, m)
	if code != 0 || !strings.Contains(out, "action: quarantine (rule hello_quarantine)") {
		t.Errorf("scan with no --rcpt on a config without relay.domains: %d\n%s\n%s", code, out, errs)
	}
	// A --rcpt outside the gateway's domains is refused as in a session.
	_, out, _ = run("scan", "-c", cfg, "--rcpt", "x@elsewhere.example", m)
	if !strings.Contains(out, "Relay access denied") {
		t.Errorf("scan --rcpt outside: %s", out)
	}
}

// TestScanLooksUpHostname: scan gives the stages conn.hostname as a
// session does (it had none, so host patterns never matched in a scan),
// and says when the lookup failed, which a deny host pattern cannot then
// judge (the stage errs, on_error answers).
func TestScanLooksUpHostname(t *testing.T) {
	dir := t.TempDir()
	srv := dnsutiltest.New(t,
		"7.2.0.192.in-addr.arpa. 300 IN PTR host7.dyn.test.",
		"host7.dyn.test. 300 IN A 192.0.2.7",
	)
	srv.ServFail("8.2.0.192.in-addr.arpa.")
	writeTestFile(t, filepath.Join(dir, "rules.yaml"), `stages:
  - {name: conn, plugin: connfilter, config: {deny: ["*.dyn.test"]}}
rules:
  - {name: denied, when: 'results.conn.verdict == "fail"', action: reject, reply: '554 5.7.1 Access denied'}
`)
	cfg := writeTestFile(t, filepath.Join(dir, "portcullis.yaml"), "hostname: mx.example.test\n"+
		"listeners: [{name: mx, address: '127.0.0.1:2525'}]\nrelay: {domains: [example.test]}\n"+
		"dns: {servers: ['"+srv.Addr+"'], timeout: 1s}\ninclude: [rules.yaml]\n")
	msg := writeTestFile(t, filepath.Join(dir, "m.eml"), "From: a@sender.example\nSubject: hi\n\nbody\n")
	bin := portcullisBinary(t) // the built-in stage runs as `portcullis plugin connfilter`
	for _, tc := range []struct{ ip, want string }{
		{"192.0.2.7", "action: reject (rule denied) 554 5.7.1 Access denied"},
		{"192.0.2.8", "action: tempfail"},
		{"192.0.2.9", "action: accept"},
	} {
		out, err := exec.Command(bin, "scan", "-c", cfg, "--ip", tc.ip, msg).CombinedOutput()
		if err != nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("scan from %s: %v\n%s\nwant %q", tc.ip, err, out, tc.want)
		}
	}
}
