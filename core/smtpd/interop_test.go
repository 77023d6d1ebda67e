package smtpd

import (
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// smtpSource finds Postfix's smtp-source (.ci/run installs postfix for it).
func smtpSource(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("smtp-source"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/smtp-source"); err == nil {
		return "/usr/sbin/smtp-source"
	}
	t.Fatal("smtp-source not installed (Debian package postfix; .ci/run installs it)")
	return ""
}

// TestPostfixSmtpSource: Postfix's load generator, a real MTA client with
// its own SMTP engine, gets every message accepted and queued intact.
func TestPostfixSmtpSource(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	const n = 40
	out, err := exec.Command(smtpSource(t), "-c", "-m", "40", "-s", "8", "-l", "3000",
		"-f", "sender@example.org", "-t", "bob@example.test", "-S", "interop", ts.addr()).CombinedOutput()
	if err != nil {
		t.Fatalf("smtp-source: %v\n%s", err, out)
	}
	envs := ts.queued(t)
	if len(envs) != n {
		t.Fatalf("%d queued, want %d\n%s", len(envs), n, out)
	}
	for _, env := range envs {
		rc, err := ts.q.Open(env.ID)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if err := checkLines(b); err != nil || !strings.Contains(string(b), "id "+env.ID) {
			t.Fatalf("message %s: %v\n%.300s", env.ID, err, b)
		}
	}
}
