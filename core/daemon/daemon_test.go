package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	netsmtp "net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis-mta/portcullis/core/config"
	dnstest "github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"

	"github.com/portcullis-mta/portcullis/core/internal/logbuf"
)

const testYAML = `hostname: %HOST%
listeners:
  - {name: mx, address: "127.0.0.1:0", auth: optional}
relay:
  domains: [example.test]
  networks: ["127.0.0.1/32"]
  users_file: users.txt
routes:
  - {domains: ["*"], next_hop: "127.0.0.1:9"}
dns: {servers: ["%DNS%"]}
queue: {dir: spool, quarantine_dir: quarantine}
limits: {auth_failures: 3}
`

func writeConfig(t *testing.T, dir, host, dns string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("bobpass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := "alice:{plain}secret\nbob:" + string(hash) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "users.txt"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.NewReplacer("%HOST%", host, "%DNS%", dns).Replace(testYAML)
	path := filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startDaemon(t *testing.T) (*Daemon, string, *logbuf.Buffer) {
	t.Helper()
	return startDaemonWith(t, nil)
}

// startDaemonWith is startDaemon with before (when not nil) called between
// New and Start, where services are added.
func startDaemonWith(t *testing.T, before func(*Daemon)) (*Daemon, string, *logbuf.Buffer) {
	t.Helper()
	dns := dnstest.New(t,
		"2.0.0.127.in-addr.arpa. 300 IN PTR client.example.org.",
		"client.example.org. 300 IN A 127.0.0.2",
		"3.0.0.127.in-addr.arpa. 300 IN PTR forged.example.org.",
	)
	path := writeConfig(t, t.TempDir(), "mx.example.test", dns.Addr)
	d, logs := startLoaded(t, path, config.Log{Format: "json", Level: "debug"}, before)
	return d, path, logs
}

// startLoaded loads the config at path, makes a daemon logging to the
// returned buffer with lc, calls before (when not nil) between New and
// Start, where services are added, and starts it; the test's end shuts it
// down (and shows its log if the test failed).
func startLoaded(t *testing.T, path string, lc config.Log, before func(*Daemon)) (*Daemon, *logbuf.Buffer) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	log, err := NewLogger(lc, logs)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(d)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})
	return d, logs
}

func dial(t *testing.T, d *Daemon, n byte) net.Conn {
	t.Helper()
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, n)}, Timeout: 5 * time.Second}
	c, err := dl.Dial("tcp", d.SMTP().Addr("mx").String())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// send runs one transaction with go-smtp's client and returns the queue ID.
func send(t *testing.T, d *Daemon, n byte, auth sasl.Client, to string) (string, error) {
	t.Helper()
	c := smtp.NewClient(dial(t, d, n))
	defer c.Close()
	if err := c.Hello("client.example.org"); err != nil {
		return "", err
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return "", err
		}
	}
	if err := c.Mail("f@example.org", nil); err != nil {
		return "", err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return "", err
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	io.WriteString(w, "Subject: t\r\n\r\nhi\r\n")
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	return strings.Fields(resp.StatusText)[1], nil
}

func TestRelayWithRealPolicyAndAuth(t *testing.T) {
	d, _, logs := startDaemon(t)
	tests := []struct {
		name string
		from byte
		auth sasl.Client
		to   string
		ok   bool
	}{
		{"local domain from outside", 2, nil, "u@example.test", true},
		{"relay from trusted network", 1, nil, "u@elsewhere.example", true},
		{"relay refused from outside", 2, nil, "u@elsewhere.example", false},
		{"PLAIN user relays", 2, sasl.NewPlainClient("", "bob", "bobpass"), "u@elsewhere.example", true},
		{"LOGIN user relays", 2, sasl.NewLoginClient("alice", "secret"), "u@elsewhere.example", true},
		{"bad password", 2, sasl.NewPlainClient("", "bob", "nope"), "u@elsewhere.example", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := send(t, d, tt.from, tt.auth, tt.to)
			if tt.ok != (err == nil) {
				t.Fatalf("err %v, want ok=%v", err, tt.ok)
			}
			if tt.ok {
				if _, err := d.Queue().Get(id); err != nil {
					t.Fatalf("%s not queued: %v", id, err)
				}
			}
		})
	}
	if !strings.Contains(logs.String(), `"user":"bob","mechanism":"PLAIN","result":"failed"`) || strings.Contains(logs.String(), "bobpass") {
		t.Fatal("failed auth not logged with the claimed user, or the password was logged")
	}
	// FCrDNS: 127.0.0.2 resolves both ways; the Received header says so.
	id, err := send(t, d, 2, nil, "u@example.test")
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := d.Queue().Open(id)
	b, _ := io.ReadAll(rc)
	rc.Close()
	if !strings.Contains(string(b), "(client.example.org [127.0.0.2])") {
		t.Fatalf("Received without the verified host name:\n%s", b)
	}
}

func TestCRAMMD5WithNetSMTP(t *testing.T) {
	d, _, _ := startDaemon(t)
	c, err := netsmtp.NewClient(dial(t, d, 2), "mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(netsmtp.CRAMMD5Auth("alice", "secret")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("f@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("u@elsewhere.example"); err != nil {
		t.Fatalf("authenticated relay refused: %v", err)
	}
}

// TestOpenRelayRealPolicy runs the relay tricks against core/policy.
func TestOpenRelayRealPolicy(t *testing.T) {
	d, _, _ := startDaemon(t)
	const R, V, IP = "example.test", "victim.example", "127.0.0.9"
	rcpts := []string{
		"u%" + V + "@" + R, "u%" + V + "@[" + IP + "]", `"u@` + V + `"`, `"u%` + V + `"`,
		`"u@` + V + `"@` + R, "u@" + V + "@" + R, "@" + R + ":u@" + V, V + "!u", V + "!u@" + R,
		"u@" + V + ".", "u@" + V,
	}
	for _, from := range []string{"", "f@" + V, "f@" + R, "f@[" + IP + "]"} {
		for _, rc := range rcpts {
			for _, v := range []string{rc, strings.ToUpper(rc)} {
				c := dial(t, d, 2)
				got := dialog(t, c, "EHLO a.example", "MAIL FROM:<"+from+">", "RCPT TO:<"+v+">")
				c.Close()
				if strings.HasPrefix(got[3], "2") {
					t.Errorf("from <%s> to <%s>: relay accepted: %q", from, v, got[3])
				}
			}
		}
	}
	if envs, _ := d.Queue().List(); len(envs) != 0 {
		t.Fatalf("%d queued", len(envs))
	}
}

// dialog sends each command and returns the greeting and every reply's last line.
func dialog(t *testing.T, c net.Conn, cmds ...string) []string {
	t.Helper()
	return converse(t, c, true, cmds)
}

// converse is dialog, reading the greeting first only if greet.
func converse(t *testing.T, c net.Conn, greet bool, cmds []string) []string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 0, 4096)
	readReply := func() string {
		for {
			lines := strings.Split(string(buf), "\r\n")
			for i, l := range lines[:len(lines)-1] {
				if len(l) >= 4 && l[3] == ' ' || len(l) == 3 {
					buf = []byte(strings.Join(lines[i+1:], "\r\n"))
					return l
				}
			}
			tmp := make([]byte, 4096)
			n, err := c.Read(tmp)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			buf = append(buf, tmp[:n]...)
		}
	}
	var out []string
	if greet {
		out = append(out, readReply())
	}
	for _, cmd := range cmds {
		if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
			t.Fatal(err)
		}
		out = append(out, readReply())
	}
	return out
}

func TestReload(t *testing.T) {
	d, path, logs := startDaemon(t)
	c := dial(t, d, 2)
	defer c.Close()
	dialog(t, c, "EHLO a.example", "MAIL FROM:<f@example.org>")

	good, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte("hostname: [unclosed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(path); err == nil {
		t.Fatal("broken config accepted")
	}
	if !strings.Contains(logs.String(), "reload refused") {
		t.Fatal("refusal not logged")
	}
	os.WriteFile(path, bytes.Replace(good, []byte("hostname: mx.example.test"), []byte("hostname: mx2.example.test"), 1), 0o600)
	if err := d.Reload(path); err != nil {
		t.Fatal(err)
	}
	// The open session goes on; a new one sees the new name.
	got := converse(t, c, false, []string{"RCPT TO:<u@example.test>", "QUIT"})
	if !strings.HasPrefix(got[0], "250") {
		t.Fatalf("session after reload: %q", got)
	}
	c2 := dial(t, d, 2)
	defer c2.Close()
	if g := dialog(t, c2)[0]; !strings.HasPrefix(g, "220 mx2.example.test") {
		t.Fatalf("greeting after reload: %q", g)
	}
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.Log
		ok   bool
	}{
		{"defaults", config.Log{}, true},
		{"json debug", config.Log{Format: "json", Level: "debug"}, true},
		{"bad format", config.Log{Format: "xml"}, false},
		{"bad level", config.Log{Level: "loud"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := NewLogger(tt.cfg, io.Discard)
			if (err == nil) != tt.ok {
				t.Fatalf("err %v", err)
			}
			if l != nil {
				l.Log(context.Background(), slog.LevelInfo, "x")
			}
		})
	}
}

// TestReloadLogLevelAndListeners: a reload applies log.level to the
// daemon's logger and those derived from it (a refused one does not), and
// opens a new listener without a warning that it waits for a restart.
func TestReloadLogLevelAndListeners(t *testing.T) {
	d, path, logs := startDaemon(t) // the logger starts at debug
	ctx := context.Background()
	derived := d.Logger().With("stage", "x")
	good, _ := os.ReadFile(path)
	reload := func(extra string) error {
		t.Helper()
		if err := os.WriteFile(path, append(append([]byte{}, good...), extra...), 0o600); err != nil {
			t.Fatal(err)
		}
		return d.Reload(path)
	}
	if err := reload("log: {level: error}\nhostname2: x\n"); err == nil {
		t.Fatal("bad config accepted")
	}
	if !derived.Enabled(ctx, slog.LevelDebug) {
		t.Fatal("a refused reload changed the log level")
	}
	if err := reload("log: {level: warn}\n"); err != nil {
		t.Fatal(err)
	}
	if d.Logger().Enabled(ctx, slog.LevelInfo) || derived.Enabled(ctx, slog.LevelInfo) || !derived.Enabled(ctx, slog.LevelWarn) {
		t.Fatal("log.level warn not in force after reload")
	}
	if err := reload("log: {level: debug}\n"); err != nil {
		t.Fatal(err)
	}
	if !derived.Enabled(ctx, slog.LevelDebug) {
		t.Fatal("log.level debug not in force after reload")
	}
	added := strings.Replace(string(good), "listeners:\n", "listeners:\n  - {name: sub, address: \"127.0.0.2:0\"}\n", 1)
	if err := os.WriteFile(path, []byte(added), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(path); err != nil {
		t.Fatal(err)
	}
	if d.SMTP().Addr("sub") == nil || strings.Contains(logs.String(), "only at restart") {
		t.Fatalf("new listener not opened, or a restart asked for:\n%s", logs.String())
	}
}

// A second daemon on the same spool stops at once with the first one's
// PID, before it opens the queue; once the first is gone, it starts.
func TestSecondDaemonOnSpool(t *testing.T) {
	d, path, _ := startDaemon(t)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, nil)
	if want := fmt.Sprintf("is in use by another portcullis run (pid %d)", os.Getpid()); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second daemon: %v, want %q", err, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	d2, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	d2.closeStores()
}
