package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/examples"
)

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = dispatch(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("hostname: a.test\nlisteners: [{name: a, address: ':25'}]\n"), 0o644)
	os.WriteFile(bad, []byte("hostname: a.test\nlistenrs: []\nlog: {level: loud}\n"), 0o644)
	cases := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		inStderr string
	}{
		{"ok", []string{"check", "-c", good}, 0, "ok: " + good + "\n", ""},
		{"embedded default", []string{"check"}, 0, "ok: " + embeddedConfigName + "\n", ""},
		{"quickstart file", []string{"check", "-c", "../../examples/quickstart/portcullis.yaml"}, 0,
			"ok: ../../examples/quickstart/portcullis.yaml\n", ""},
		{"every problem", []string{"check", "-c", bad}, 1, bad + ":1:1: listeners: at least one listener is needed\n" +
			bad + ":2:1: unknown key \"listenrs\" (did you mean \"listeners\"?)\n" +
			bad + ":3:14: log.level: \"loud\" is not one of debug, info, warn, error\n", ""},
		{"missing file", []string{"check", "-c", filepath.Join(dir, "none.yaml")}, 1,
			filepath.Join(dir, "none.yaml") + ": no such file or directory\n", ""},
		{"bad flag", []string{"check", "-x"}, 2, "", "flag provided but not defined: -x"},
		{"stray argument", []string{"check", good}, 2, "", "unexpected argument"},
		{"help", []string{"check", "-h"}, 0, "", "-c FILE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := run(c.args...)
			if code != c.code || out != c.stdout || !strings.Contains(errs, c.inStderr) {
				t.Errorf("got %d %q %q; want %d %q, stderr containing %q", code, out, errs, c.code, c.stdout, c.inStderr)
			}
		})
	}
}

func TestCheckListFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "users.txt"), []byte("alice:{plain}x\nbob:$apr1$a$b\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "rcpts.txt"), []byte("# ok\nnot an address\n"), 0o600)
	cfg := filepath.Join(dir, "p.yaml")
	os.WriteFile(cfg, []byte("hostname: a.test\nlisteners: [{name: a, address: ':25'}]\n"+
		"relay: {domains: [a.test], users_file: users.txt, recipients: rcpts.txt}\n"), 0o644)
	code, out, _ := run("check", "-c", cfg)
	want := filepath.Join(dir, "users.txt") + ":2:1: user \"bob\": not a bcrypt hash (make one with htpasswd -nbB) or {plain}secret\n" +
		filepath.Join(dir, "rcpts.txt") + ":2:1: invalid address \"not an address\"\n"
	if code != 1 || out != want {
		t.Errorf("got %d %q, want 1 %q", code, out, want)
	}
}

func TestCheckRunsExtraChecks(t *testing.T) {
	saved := extraChecks
	t.Cleanup(func() { extraChecks = saved })
	var seen *config.Config
	extraChecks = append(extraChecks, func(cfg *config.Config) []error {
		seen = cfg
		return []error{
			&config.Error{File: "rules.yaml", Line: 3, Col: 7, Msg: "unknown action"},
			errors.New("plain problem"),
		}
	})
	code, out, _ := run("check")
	want := "rules.yaml:3:7: unknown action\nplain problem\n"
	if code != 1 || out != want || seen == nil || seen.Hostname != "mx.example.test" {
		t.Errorf("got %d %q (cfg %v); want 1 %q", code, out, seen != nil, want)
	}
}

// TestEmbeddedMatchesFile guards against the embed going stale and checks
// that the embedded config resolves relative paths from the working directory.
func TestEmbeddedMatchesFile(t *testing.T) {
	file, err := os.ReadFile("../../examples/quickstart/portcullis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, examples.Quickstart) {
		t.Error("examples.Quickstart differs from examples/quickstart/portcullis.yaml")
	}
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if cfg.Queue.Dir != filepath.Join(wd, "spool") || cfg.Path != "" || cfg.Dir != wd {
		t.Errorf("embedded config paths: dir %q queue %q path %q", cfg.Dir, cfg.Queue.Dir, cfg.Path)
	}
}

// TestCheckDKIMKeys: check loads the signing keys as run does, so a key
// that does not parse, or that other users can read, fails here.
func TestCheckDKIMKeys(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	os.WriteFile(cfg, []byte("hostname: a.test\nlisteners: [{name: a, address: ':25'}]\n"+
		"dkim: {sign: [{domain: a.test, selector: s, key: a.key}]}\n"), 0o644)
	key := filepath.Join(dir, "a.key")
	os.WriteFile(key, []byte("not a key\n"), 0o600)
	if code, out, _ := run("check", "-c", cfg); code != 1 || !strings.HasPrefix(out, cfg+":3:50: dkim.sign[0]: "+key+": ") {
		t.Errorf("garbage key: got %d %q", code, out)
	}
	if code, out, _ := run("dkim", "keygen", "a.test", "s", "--force", "-c", cfg); code != 0 {
		t.Fatalf("keygen: %d %s", code, out)
	}
	if code, out, _ := run("check", "-c", cfg); code != 0 {
		t.Errorf("good key: got %d %q", code, out)
	}
	os.Chmod(key, 0o644)
	if code, out, _ := run("check", "-c", cfg); code != 1 || !strings.Contains(out, "unsafe key file: mode 0644") {
		t.Errorf("world-readable key: got %d %q", code, out)
	}
}

// TestCheckSpoolDirs: a queue or quarantine directory that run could not
// make (its parent is a file, or it would go where no directory can be
// made) is reported by check, at its key; check makes nothing.
func TestCheckSpoolDirs(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "file"), []byte("x\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "held"), 0o755)
	base := "hostname: a.test\nlisteners: [{name: a, address: ':25'}]\n"
	cases := []struct{ name, queue, want string }{
		{"parent is a file", "queue:\n  dir: file/spool\n",
			"P:4:8: queue.dir: D/file/spool: not a directory\n"},
		{"quarantine is a file", "queue: {quarantine_dir: file}\n",
			"P:3:25: queue.quarantine_dir: D/file is not a directory\n"},
		{"deep, not there yet", "queue: {dir: a/b/spool, quarantine_dir: held}\n", "ok: P\n"},
		{"defaults", "", "ok: P\n"},
	}
	if runtime.GOOS == "linux" {
		cases = append(cases, struct{ name, queue, want string }{"under /proc", "queue: {dir: /proc/nonexistent/spool}\n",
			"P:3:14: queue.dir: /proc/nonexistent/spool does not exist and cannot be made: /proc is on the kernel's proc file system\n"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "p.yaml")
			os.WriteFile(cfg, []byte(base+c.queue), 0o644)
			_, out, _ := run("check", "-c", cfg)
			out = strings.NewReplacer(cfg, "P", dir, "D").Replace(out)
			if out != c.want {
				t.Errorf("got %q, want %q", out, c.want)
			}
		})
	}
	for _, made := range []string{"spool", "quarantine", "a"} {
		if _, err := os.Stat(filepath.Join(dir, made)); err == nil {
			t.Errorf("check made %s", made)
		}
	}
}

// TestCheckOpenPasswordFile: a smarthost password file every user can read
// is no problem (the daemon starts with it, and warns), so check still
// says ok, but says it on stderr, naming the route and what to do.
func TestCheckOpenPasswordFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("hostname: a.test\nlisteners: [{name: a, address: ':25'}]\nroutes:\n"+
		"  - {domains: [inside.test], next_hop: '10.0.0.5:25'}\n"+
		"  - {domains: ['*'], next_hop: 'smtp.isp.test:587', tls: required, auth: {username: u, password_file: isp.pass}}\n"), 0o644)
	pass := filepath.Join(dir, "isp.pass")
	os.WriteFile(pass, []byte("secret\n"), 0o644)
	os.Chmod(pass, 0o644) // whatever the umask
	code, out, errs := run("check", "-c", cfg)
	want := "portcullis check: warning: routes[1].auth.password_file " + pass + " (next_hop smtp.isp.test:587) is readable by every user of this machine (mode 0644): chmod 600 it"
	if code != 0 || out != "ok: "+cfg+"\n" || !strings.Contains(errs, want) {
		t.Errorf("mode 0644: got %d %q %q; want 0, ok, stderr with %q", code, out, errs, want)
	}
	os.Chmod(pass, 0o600)
	if code, out, errs := run("check", "-c", cfg); code != 0 || out != "ok: "+cfg+"\n" || errs != "" {
		t.Errorf("mode 0600: got %d %q %q; want 0, ok, nothing on stderr", code, out, errs)
	}
}
