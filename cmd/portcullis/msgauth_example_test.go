package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

// TestMsgauthExample runs examples/rules/msgauth.yaml through `portcullis
// scan` (the msgauth plugin as its own process, as `run` starts it) against
// an in-process DNS server: a DMARC p=reject failure is refused, a
// p=quarantine failure is tagged, an aligned message passes with its
// Authentication-Results field.
func TestMsgauthExample(t *testing.T) {
	bin := portcullisBinary(t)
	srv := dnsutiltest.New(t,
		`example.test. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`other.test. 300 IN TXT "v=spf1 ip4:198.51.100.0/24 -all"`,
		`_dmarc.example.test. 300 IN TXT "v=DMARC1; p=reject"`,
		`_dmarc.quar.test. 300 IN TXT "v=DMARC1; p=quarantine"`,
		`_dmarc.flaky.test. 300 IN TXT "v=DMARC1; p=reject"`,
	)
	srv.ServFail("flaky.test.")           // its SPF record cannot be read
	srv.ServFail("_dmarc.nopolicy.test.") // its DMARC policy cannot be read
	dir := t.TempDir()
	rules, err := os.ReadFile("../../examples/rules/msgauth.yaml")
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "rules/msgauth.yaml"), string(rules))
	cfg := writeTestFile(t, filepath.Join(dir, "portcullis.yaml"), "hostname: mx.example.test\n"+
		"listeners: [{name: mx, address: '127.0.0.1:2525'}]\nrelay: {domains: [example.test], networks: ['127.0.0.0/8']}\n"+
		"dns: {servers: ['"+srv.Addr+"']}\ninclude: ['rules/*.yaml']\n")
	msg := func(name, from string) string {
		return writeTestFile(t, filepath.Join(dir, name+".eml"), "From: <"+from+">\r\nTo: <b@example.test>\r\n"+
			"Subject: "+name+"\r\nMessage-ID: <"+name+"@x>\r\n\r\nbody\r\n")
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"dmarc reject", []string{"--ip", "198.51.100.7", "--helo", "mail.other.test", "--from", "a@other.test", msg("spoof", "ceo@example.test")}, []string{
			"action: reject (rule dmarc_reject) 550 5.7.1 Unauthenticated email from example.test is not accepted due to its DMARC policy"}},
		{"dmarc quarantine is tagged", []string{"--ip", "198.51.100.7", "--helo", "mail.other.test", "--from", "a@other.test", msg("soft", "a@quar.test")}, []string{
			`subject prefix: "[DMARC] "`, "X-Portcullis-DMARC: fail quar.test p=quarantine", "action: accept"}},
		{"dns trouble under p=reject is a tempfail", []string{"--ip", "198.51.100.7", "--helo", "mail.other.test", "--from", "a@flaky.test", msg("flaky", "a@flaky.test")}, []string{
			"action: tempfail (rule dmarc_temperror) 451 4.7.5 DMARC check for flaky.test failed temporarily; try again later"}},
		{"dns trouble reading the policy is a tempfail", []string{"--ip", "198.51.100.7", "--helo", "mail.other.test", "--from", "a@other.test", msg("nopolicy", "ceo@nopolicy.test")}, []string{
			"action: tempfail (rule dmarc_temperror) 451 4.7.5 DMARC check for nopolicy.test failed temporarily; try again later"}},
		{"aligned spf passes", []string{"--ip", "192.0.2.10", "--helo", "mail.example.test", "--from", "bounce@example.test", msg("good", "a@example.test")}, []string{
			"Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=bounce@example.test; dkim=none; dmarc=pass header.from=example.test",
			"action: accept"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(bin, append([]string{"scan", "-c", cfg}, tc.args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("scan: %v\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
