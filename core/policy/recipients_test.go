package policy

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for the reload throttle.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestRecipients(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "recipients.txt")
	writeFile := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("# valid addresses\nAlice@Example.TEST\nbob@example.test # trailing comment\n@a.sub.example.test\n")
	p := testPolicy(t, path)
	var logs bytes.Buffer
	p.rcpts.file.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	p.rcpts.file.SetClock(clock.Now)

	unknown := func(r string) string { return "550 5.1.1 <" + r + ">: Recipient address rejected: User unknown" }
	check := func(rcpt, want string) {
		t.Helper()
		if got := reply(t, p.CheckRcpt(untrusted, "f@victim.example", rcpt)); got != want {
			t.Errorf("%s: got %q, want %q", rcpt, got, want)
		}
	}
	check("alice@example.test", "ok")
	check("ALICE@EXAMPLE.TEST", "ok")
	check("bob@example.test", "ok")
	check("carol@example.test", unknown("carol@example.test"))
	check("anyone@a.sub.example.test", "ok")
	check("anyone@b.sub.example.test", unknown("anyone@b.sub.example.test"))
	check("u@victim.example", "554 5.7.1 <u@victim.example>: Relay access denied")
	// RFC 5321 4.5.1: postmaster of a domain we take mail for, listed or not.
	check("PostMaster@example.test", "ok")
	check("postmaster@b.sub.example.test", "ok")
	check("postmaster@victim.example", "554 5.7.1 <postmaster@victim.example>: Relay access denied")
	check("postmaster2@example.test", unknown("postmaster2@example.test"))

	// A change is not seen within the throttle window, then is.
	writeFile("carol@example.test\n")
	check("carol@example.test", unknown("carol@example.test"))
	clock.Add(1100 * time.Millisecond)
	check("carol@example.test", "ok")
	check("alice@example.test", unknown("alice@example.test"))
	if !strings.Contains(logs.String(), "recipients file reloaded") {
		t.Errorf("no reload log line: %s", logs.String())
	}

	// A bad file keeps the old list and says so once.
	writeFile("carol@example.test\nnot an address\n")
	clock.Add(2 * time.Second)
	check("carol@example.test", "ok")
	clock.Add(2 * time.Second)
	check("carol@example.test", "ok")
	if n := strings.Count(logs.String(), "reload failed"); n != 1 {
		t.Errorf("%d failure log lines, want 1: %s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "recipients.txt:2:1: invalid address") {
		t.Errorf("failure log lacks file:line: %s", logs.String())
	}

	// A deleted file keeps the old list too.
	os.Remove(path)
	clock.Add(2 * time.Second)
	check("carol@example.test", "ok")
}

func TestRecipientsBadAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.txt")
	os.WriteFile(path, []byte("ok@example.test\n@bad..domain\nno-at-sign\n"), 0o644)
	cfg := testPolicyConfig(t)
	cfg.Relay.Recipients = path
	// Every bad line is named, one a line.
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "r.txt:2:1: ") || !strings.Contains(err.Error(), "\n"+path+":3:1: invalid address") {
		t.Errorf("New with a bad recipients file: %v", err)
	}
}

func TestRecipientsConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.txt")
	os.WriteFile(path, []byte("a@example.test\n"), 0o644)
	p := testPolicy(t, path)
	clock := &fakeClock{t: time.Now()}
	p.rcpts.file.SetClock(clock.Now)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				if i == 0 && j%50 == 0 {
					os.WriteFile(path, []byte(strings.Repeat("#\n", j)+"a@example.test\n"), 0o644)
					clock.Add(time.Second)
				}
				if err := p.CheckRcpt(untrusted, "", "a@example.test"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestRecipientsHashInLocalPart: '#' is atext (RFC 5322 3.2.3), so
// "team#1@example.test" is an address, not "team" and a comment. A
// comment starts at the beginning of a line or after white space.
func TestRecipientsHashInLocalPart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.txt")
	content := "# list\nteam#1@example.test\nbob@example.test # a comment\n\tcarol@example.test\t#another\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	p := testPolicy(t, path)
	for rcpt, want := range map[string]string{
		"team#1@example.test": "ok",
		"bob@example.test":    "ok",
		"carol@example.test":  "ok",
		"team@example.test":   "550 5.1.1 <team@example.test>: Recipient address rejected: User unknown",
	} {
		if got := reply(t, p.CheckRcpt(untrusted, "", rcpt)); got != want {
			t.Errorf("%s: got %q, want %q", rcpt, got, want)
		}
	}
}

// TestRecipientsFileWithBOM: an editor that saves UTF-8 with a byte order mark
// must not turn the first entry into an address nobody can match.
func TestRecipientsFileWithBOM(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.txt")
	if err := os.WriteFile(path, []byte("\ufeffalice@example.test\r\nbob@example.test\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := testPolicy(t, path)
	for _, rcpt := range []string{"alice@example.test", "bob@example.test"} {
		if got := reply(t, p.CheckRcpt(untrusted, "", rcpt)); got != "ok" {
			t.Errorf("%s: got %q, want ok", rcpt, got)
		}
	}
}

// TestRecipientsQuotedLocalPart: an entry written in RFC 5321 form with a
// quoted local part matches the address go-smtp hands over (unquoted).
func TestRecipientsQuotedLocalPart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.txt")
	if err := os.WriteFile(path, []byte("\"a b\"@example.test\n\"c.d\"@example.test\n\"e\\\"f\"@example.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := testPolicy(t, path)
	for rcpt, want := range map[string]string{
		"a b@example.test": "ok",
		"c.d@example.test": "ok",
		`e"f@example.test`: "ok",
		"ab@example.test":  "550 5.1.1",
	} {
		if got := reply(t, p.CheckRcpt(untrusted, "", rcpt)); !strings.HasPrefix(got, want) {
			t.Errorf("%s: got %q, want %q", rcpt, got, want)
		}
	}
}
