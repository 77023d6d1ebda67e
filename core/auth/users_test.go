package auth

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

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

// loadFixture loads testdata/htpasswd: hashes made by apache2-utils'
// `htpasswd -nbB`, which writes the $2y$ prefix.
func loadFixture(t *testing.T) *Users {
	t.Helper()
	u, err := LoadUsers("testdata/htpasswd")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestVerify(t *testing.T) {
	u := loadFixture(t)
	cases := []struct {
		user, pass string
		want       bool
	}{
		{"alice", "correct horse", true},
		{"alice", "correct horse ", false},
		{"alice", "", false},
		{"Alice", "correct horse", false}, // names are case-sensitive, as in htpasswd
		{"bob", "s3cret:with:colons", true},
		{"bob", "s3cret", false},
		{"carol", "tanstaaftanstaaf", true},
		{"carol", "tanstaaf", false},
		{"carol", "tanstaaftanstaafX", false}, // the secret as a prefix is not enough
		{"carol", "tanstaaftanstaaf\x00", false},
		{"mallory", "correct horse", false},
		{"", "", false},
	}
	for _, c := range cases {
		t.Run(c.user+"/"+c.pass, func(t *testing.T) {
			if got := u.Verify(c.user, c.pass); got != c.want {
				t.Errorf("Verify(%q, %q) = %v, want %v", c.user, c.pass, got, c.want)
			}
		})
	}
}

func TestSecret(t *testing.T) {
	u := loadFixture(t)
	if s, ok := u.Secret("carol"); !ok || s != "tanstaaftanstaaf" {
		t.Errorf("Secret(carol) = %q, %v", s, ok)
	}
	for _, name := range []string{"alice", "nobody"} {
		if s, ok := u.Secret(name); ok || s != "" {
			t.Errorf("Secret(%s) = %q, %v; want none", name, s, ok)
		}
	}
}

// TestUnknownUserCostsBcrypt: the dummy hash has the file's highest cost,
// so an unknown name takes as long as a known one.
func TestUnknownUserCostsBcrypt(t *testing.T) {
	u := loadFixture(t)
	cost, err := bcrypt.Cost(u.current().dummy)
	if err != nil || cost != 5 {
		t.Errorf("dummy cost %d (%v), want 5 (alice's)", cost, err)
	}
}

func TestBadUsersFiles(t *testing.T) {
	cases := []struct{ name, content, want string }{
		{"apr1", "u:$apr1$abc$def\n", "f:1:1: user \"u\": not a bcrypt hash"},
		{"sha", "# c\nu:{SHA}abc=\n", "f:2:1: user \"u\": not a bcrypt hash"},
		{"no colon", "alice\n", "f:1:1: want name:hash"},
		{"empty name", ":{plain}x\n", "f:1:1: want name:hash"},
		{"space in name", "a b:{plain}x\n", "f:1:1: want name:hash"},
		{"empty plain", "u:{plain}\n", "f:1:1: user \"u\": empty {plain} secret"},
		{"duplicate", "u:{plain}a\nu:{plain}b\n", "f:2:1: user \"u\" listed twice"},
		// Every bad line is reported, one a line, so that check shows them all.
		{"two bad lines", "a:$apr1$x$y\nok:{plain}p\nb:{SHA}z=\n", "f:1:1: user \"a\": not a bcrypt hash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			os.WriteFile(p, []byte(c.content), 0o600)
			_, err := LoadUsers(p)
			if err == nil || !strings.HasPrefix(strings.TrimPrefix(err.Error(), dir+"/"), c.want) {
				t.Errorf("got %v, want prefix %q", err, c.want)
			}
			if c.name == "two bad lines" && (err == nil || !strings.Contains(err.Error(), "\n"+p+":3:1: user \"b\": not a bcrypt hash")) {
				t.Errorf("got %v, want line 3 named on a line of its own", err)
			}
		})
	}
	if _, err := LoadUsers(filepath.Join(t.TempDir(), "none")); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}

func TestUsersReload(t *testing.T) {
	p := filepath.Join(t.TempDir(), "users")
	write := func(s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a:{plain}one\n")
	u, err := LoadUsers(p)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	u.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	u.file.SetClock(clock.Now)

	write("a:{plain}two2\n")
	if !u.Verify("a", "one") {
		t.Error("change seen before the recheck interval")
	}
	clock.Add(1500 * time.Millisecond)
	if u.Verify("a", "one") || !u.Verify("a", "two2") {
		t.Error("new password not in effect after reload")
	}
	if !strings.Contains(logs.String(), "users file reloaded") {
		t.Errorf("no reload log: %s", logs.String())
	}
	write("a:$apr1$x$y\n")
	clock.Add(2 * time.Second)
	if !u.Verify("a", "two2") {
		t.Error("bad reload replaced the users")
	}
	if !strings.Contains(logs.String(), "reload failed") {
		t.Errorf("no failure log: %s", logs.String())
	}
	if got := u.Mechanisms(); strings.Join(got, " ") != "PLAIN LOGIN CRAM-MD5" {
		t.Errorf("Mechanisms = %v", got)
	}
	write("a:$2y$04$uAo/nRAVZXVmJgUAIvko4.J8t/T88.uOAfbrvBCiaMdRmvpO3ccQO\n")
	clock.Add(2 * time.Second)
	if got := u.Mechanisms(); strings.Join(got, " ") != "PLAIN LOGIN" {
		t.Errorf("Mechanisms without {plain} users = %v", got)
	}
}

// TestUsersFileBOM: an editor that saves UTF-8 with a byte order mark
// must not rename the first user to "\ufeffalice", who then can never log in.
func TestUsersFileBOM(t *testing.T) {
	p := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(p, []byte("\ufeffalice:{plain}one1\r\nbob:{plain}two2\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := LoadUsers(p)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Verify("alice", "one1") || !u.Verify("bob", "two2") {
		t.Error("a user of a file with a byte order mark cannot log in")
	}
}

// TestDamagedBcryptRefused: bcrypt.Cost reads only the "$2y$05$" head, so
// a hash missing its last character, or with a character changed or
// appended, was loaded and its user silently could never log in. The
// error names the line and the user, never the hash.
func TestDamagedBcryptRefused(t *testing.T) {
	const good = "$2y$04$uAo/nRAVZXVmJgUAIvko4.J8t/T88.uOAfbrvBCiaMdRmvpO3ccQO" // bob's
	cases := []struct{ name, hash string }{
		{"truncated by one", good[:len(good)-1]},
		{"one character too many", good + "x"},
		{"not the bcrypt alphabet", good[:30] + "!" + good[31:]},
		{"cost out of range", "$2y$99$" + good[7:]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			if err := os.WriteFile(p, []byte("# users\nbob:"+c.hash+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadUsers(p)
			const want = "f:2:1: user \"bob\": not a bcrypt hash"
			if err == nil || !strings.HasPrefix(strings.TrimPrefix(err.Error(), dir+"/"), want) {
				t.Fatalf("got %v, want prefix %q", err, want)
			}
			if strings.Contains(err.Error(), c.hash[7:]) {
				t.Errorf("error shows the hash: %v", err)
			}
		})
	}
	// The good hash, for contrast.
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("bob:"+good+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if u, err := LoadUsers(p); err != nil || !u.Verify("bob", "s3cret:with:colons") {
		t.Errorf("good hash: %v", err)
	}
}
