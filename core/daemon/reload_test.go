package daemon

import (
	"encoding/base64"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/core/config"
)

// rewrite writes the test config at path with each old/new pair replaced.
func rewrite(t *testing.T, path string, good []byte, oldnew ...string) {
	t.Helper()
	y := strings.NewReplacer(oldnew...).Replace(string(good))
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
}

// withSub is the replacement that adds a listener "sub" at addr.
func withSub(addr string) []string {
	return []string{"listeners:\n", "listeners:\n  - {name: sub, address: \"" + addr + "\"}\n"}
}

// dialAddr connects from 127.0.0.2.
func dialAddr(t *testing.T, addr string) net.Conn {
	t.Helper()
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	c, err := dl.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// finish completes the transaction dialog opened with MAIL FROM.
func finish(t *testing.T, c net.Conn) {
	t.Helper()
	got := converse(t, c, false, []string{"RCPT TO:<u@example.test>", "DATA", "Subject: t\r\n\r\nhi\r\n."})
	if !strings.HasPrefix(got[0], "250") || !strings.HasPrefix(got[1], "354") || !strings.HasPrefix(got[2], "250 2.0.0") {
		t.Fatalf("open session after reload: %q", got)
	}
}

// TestReloadOpensAndClosesListeners: SIGHUP opens a listener added to the
// file and closes one removed from it; the unchanged one keeps its socket,
// and sessions open across the reloads complete their messages.
func TestReloadOpensAndClosesListeners(t *testing.T) {
	d, path, _ := startDaemon(t)
	good, _ := os.ReadFile(path)
	mx := d.SMTP().Addr("mx").String()
	onMX := dialAddr(t, mx)
	dialog(t, onMX, "EHLO a.example", "MAIL FROM:<f@example.org>")

	rewrite(t, path, good, withSub("127.0.0.2:0")...)
	if err := d.Reload(path); err != nil {
		t.Fatal(err)
	}
	if d.SMTP().Addr("sub") == nil {
		t.Fatal("added listener not open")
	}
	sub := d.SMTP().Addr("sub").String()
	if got := d.SMTP().Addr("mx").String(); got != mx {
		t.Fatalf("unchanged listener moved from %s to %s", mx, got)
	}
	onSub := dialAddr(t, sub)
	dialog(t, onSub, "EHLO a.example", "MAIL FROM:<f@example.org>")
	finish(t, onMX)

	rewrite(t, path, good, "hostname: mx.example.test", "hostname: mx3.example.test")
	if err := d.Reload(path); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", sub, 2*time.Second); err == nil {
		c.Close()
		t.Fatal("removed listener still accepts")
	}
	finish(t, onSub)
	if g := dialog(t, dialAddr(t, mx))[0]; !strings.HasPrefix(g, "220 mx3.example.test") {
		t.Fatalf("greeting on the kept listener: %q", g)
	}
}

// failingService refuses reloads while fail is set.
type failingService struct {
	recService
	fail bool
}

func (f *failingService) Reload(cfg *config.Config) error {
	if f.fail {
		return errors.New("service refuses")
	}
	return f.recService.Reload(cfg)
}

// TestReloadRefusedWhenAddressInUse: a listener that cannot bind refuses
// the whole reload before any service sees the new config; a service that
// refuses leaves no new listener behind.
func TestReloadRefusedWhenAddressInUse(t *testing.T) {
	svc := &failingService{}
	d, path, _ := startDaemonWith(t, func(d *Daemon) { d.AddService(svc) })
	good, _ := os.ReadFile(path)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	rewrite(t, path, good, append(withSub(taken.Addr().String()),
		"hostname: mx.example.test", "hostname: mx2.example.test")...)
	if err := d.Reload(path); err == nil {
		t.Fatal("reload with an address in use accepted")
	}
	if d.Config().Hostname != "mx.example.test" || d.SMTP().Addr("sub") != nil {
		t.Fatal("a refused reload changed the config or the listeners")
	}
	if got := strings.Join(svc.events, ","); got != "start" {
		t.Fatalf("service events %q: a refused reload reached it", got)
	}
	if g := dialog(t, dialAddr(t, d.SMTP().Addr("mx").String()))[0]; !strings.HasPrefix(g, "220 mx.example.test") {
		t.Fatalf("greeting after the refused reload: %q", g)
	}
	if _, err := send(t, d, 2, nil, "u@example.test"); err != nil {
		t.Fatalf("old listener no longer serves: %v", err)
	}

	svc.fail = true
	rewrite(t, path, good, withSub("127.0.0.2:0")...)
	if err := d.Reload(path); err == nil {
		t.Fatal("reload refused by a service accepted")
	}
	if d.SMTP().Addr("sub") != nil {
		t.Fatal("a refused reload opened a listener")
	}
}

// TestReloadAuthLimits: limits.auth_failures takes effect at reload, and
// failures counted before it still count.
func TestReloadAuthLimits(t *testing.T) {
	d, path, _ := startDaemon(t) // auth_failures: 3
	good, _ := os.ReadFile(path)
	bad := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00bob\x00wrong"))
	try := func() string {
		t.Helper()
		c := dial(t, d, 2)
		defer c.Close()
		return dialog(t, c, "EHLO a.example", bad)[2]
	}
	if got := try(); !strings.HasPrefix(got, "535") {
		t.Fatalf("first failure: %q", got)
	}
	rewrite(t, path, good, "auth_failures: 3", "auth_failures: 2")
	if err := d.Reload(path); err != nil {
		t.Fatal(err)
	}
	if got := try(); !strings.HasPrefix(got, "535") {
		t.Fatalf("second failure: %q", got)
	}
	if got := try(); !strings.HasPrefix(got, "454 4.7.0") {
		t.Fatalf("after two failures under auth_failures 2: %q, want the lockout", got)
	}
}

// A reload names each setting it cannot apply (queue.workers, the queue
// directories, log.format), against the values the daemon started with:
// a reload that puts them back is no change and says nothing.
func TestReloadWarnsRestartOnly(t *testing.T) {
	d, path, logs := startDaemon(t)
	good, _ := os.ReadFile(path)
	const queueLine = "queue: {dir: spool, quarantine_dir: quarantine}"
	if !strings.Contains(string(good), queueLine) {
		t.Fatalf("test config has no %q", queueLine)
	}
	reload := func(text string) string {
		t.Helper()
		before := len(logs.String())
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := d.Reload(path); err != nil {
			t.Fatal(err)
		}
		return logs.String()[before:]
	}
	for _, tc := range []struct{ queue, extra, want string }{
		{"queue: {dir: spool, quarantine_dir: quarantine, workers: 3}", "", "queue.workers changes only at restart"},
		{"queue: {dir: spool2, quarantine_dir: quarantine}", "", "queue directories change only at restart"},
		{queueLine, "log: {format: json}\n", "log.format changes only at restart"},
	} {
		out := reload(strings.Replace(string(good), queueLine, tc.queue, 1) + tc.extra)
		if !strings.Contains(out, tc.want) {
			t.Errorf("%s%s: no %q in:\n%s", tc.queue, tc.extra, tc.want, out)
		}
		if out := reload(string(good)); strings.Contains(out, "only at restart") {
			t.Errorf("a reload back to the running values warned:\n%s", out)
		}
	}
}
