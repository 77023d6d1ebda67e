package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/core/dkimsign"
)

// dkimConfig writes a minimal valid config with a dkim.sign entry whose
// key does not exist yet.
func dkimConfig(t *testing.T) (dir, path string) {
	dir = t.TempDir()
	path = filepath.Join(dir, "portcullis.yaml")
	cfg := "hostname: mx.example.test\nlisteners: [{name: mx, address: \"127.0.0.1:2525\"}]\nstate: {path: state.db}\nqueue: {dir: spool}\n" +
		"dkim:\n  sign: [{domain: example.test, selector: s2026, key: keys/example.key}]\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

func runDKIMCmd(args ...string) (int, string, string) {
	var out, errs bytes.Buffer
	code := dispatch(append([]string{"dkim"}, args...), &out, &errs)
	return code, out.String(), errs.String()
}

func TestDKIMKeygen(t *testing.T) {
	dir, cfg := dkimConfig(t)
	tests := []struct {
		name, kind, domain, selector string
		keyPath                      string // relative to dir
	}{
		{"rsa where the config expects it", "rsa", "example.test", "s2026", "keys/example.key"},
		{"ed25519 at the default place", "ed25519", "other.test", "e1", "dkim/other.test.e1.key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runDKIMCmd("keygen", tc.domain, tc.selector, "--type", tc.kind, "-c", cfg)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if hint := "key: " + tc.keyPath + "}"; strings.Contains(errs, "add to the config") != !strings.HasPrefix(tc.keyPath, "keys/") ||
				strings.Contains(errs, "add to the config") && !strings.Contains(errs, hint) {
				t.Errorf("config hint: %q, want one with %q only when the config lacks the key", errs, hint)
			}
			path := filepath.Join(dir, tc.keyPath)
			st, err := os.Stat(path)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v, %v", st, err)
			}
			key, err := dkimsign.LoadKey(path)
			if err != nil {
				t.Fatal(err)
			}
			rr, err := dns.NewRR(strings.TrimSpace(out))
			if err != nil {
				t.Fatalf("printed record %q: %v", out, err)
			}
			want, _ := dkimsign.RecordValue(key.Public())
			txt := rr.(*dns.TXT)
			if txt.Hdr.Name != tc.selector+"._domainkey."+tc.domain+"." || strings.Join(txt.Txt, "") != want ||
				!strings.Contains(want, "k="+tc.kind) {
				t.Errorf("record %q does not publish the key written", out)
			}
			// Again without --force: refused, key kept.
			before, _ := os.ReadFile(path)
			if code, _, errs := runDKIMCmd("keygen", tc.domain, tc.selector, "-c", cfg); code != 1 || !strings.Contains(errs, "--force") {
				t.Errorf("second keygen: exit %d, %q", code, errs)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("existing key overwritten without --force")
			}
			if code, _, errs := runDKIMCmd("keygen", tc.domain, tc.selector, "--force", "--type", tc.kind, "-c", cfg); code != 0 {
				t.Errorf("--force: exit %d, %s", code, errs)
			}
			if after, _ := os.ReadFile(path); bytes.Equal(before, after) {
				t.Error("--force kept the old key")
			}
		})
	}
	// Now that the key exists the config loads as it is.
	if code, _, errs := dispatch2(t, "check", "-c", cfg); code != 0 {
		t.Errorf("check after keygen: %d %s", code, errs)
	}
}

func dispatch2(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errs bytes.Buffer
	code := dispatch(args, &out, &errs)
	return code, out.String(), errs.String()
}

func TestDKIMKeygenUsage(t *testing.T) {
	_, cfg := dkimConfig(t)
	// Each says what is wrong on its first line (the usage follows).
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no verb":        {[]string{}, "portcullis dkim: missing subcommand (keygen)\n"},
		"unknown verb":   {[]string{"rotate"}, `portcullis dkim: unknown subcommand "rotate" (the one there is: keygen)` + "\n"},
		"verify":         {[]string{"verify", "-c", cfg}, `portcullis dkim: unknown subcommand "verify" (the one there is: keygen)` + "\n"},
		"no args":        {[]string{"keygen", "-c", cfg}, "portcullis dkim keygen: missing DOMAIN and SELECTOR\n"},
		"missing arg":    {[]string{"keygen", "example.test", "-c", cfg}, "portcullis dkim keygen: missing SELECTOR\n"},
		"extra arg":      {[]string{"keygen", "example.test", "s", "t", "-c", cfg}, `portcullis dkim keygen: unexpected argument "t" (want DOMAIN SELECTOR)` + "\n"},
		"bad type":       {[]string{"keygen", "example.test", "s", "--type", "dsa", "-c", cfg}, `portcullis dkim keygen: unknown --type "dsa" (want rsa or ed25519)` + "\n"},
		"bad domain":     {[]string{"keygen", "exa mple", "s", "-c", cfg}, `portcullis dkim keygen: "exa mple" is not a domain name` + "\n"},
		"bad selector":   {[]string{"keygen", "example.test", "s_1", "-c", cfg}, `portcullis dkim keygen: "s_1" is not a selector`},
		"unknown option": {[]string{"keygen", "example.test", "s", "--bits", "4096"}, "flag provided but not defined: -bits\n"},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errs := runDKIMCmd(tc.args...)
			if code != 2 || out != "" || !strings.HasPrefix(errs, tc.want) || !strings.Contains(errs, "usage: portcullis dkim keygen") {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2, %q first, then the usage", code, out, errs, tc.want)
			}
		})
	}
	if code, _, errs := runDKIMCmd("--help"); code != 0 || !strings.HasPrefix(errs, "usage: portcullis dkim keygen") {
		t.Errorf("--help: exit %d, %q", code, errs)
	}
	// A config that is broken otherwise is reported, exit 1.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("hostname: [\n"), 0o644)
	if code, _, _ := runDKIMCmd("keygen", "example.test", "s", "-c", bad); code != 1 {
		t.Errorf("broken config: exit %d, want 1", code)
	}
}

// keygen run by root hands the key, and the directory it made for it, to
// the daemon's user (the owner of the queue directory): a key only root
// can read would stop the daemon at its next start.
func TestDKIMKeygenOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		// Only root can give files away; as another user the key is
		// already that user's. Check that nothing is chowned.
		dir, cfg := dkimConfig(t)
		if code, _, errs := runDKIMCmd("keygen", "example.test", "s2026", "--type", "ed25519", "-c", cfg); code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		st, err := os.Stat(filepath.Join(dir, "keys/example.key"))
		if err != nil || st.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
			t.Fatalf("key: %v", err)
		}
		return
	}
	dir, cfg := dkimConfig(t)
	spool := filepath.Join(dir, "spool")
	if err := os.Mkdir(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	const uid, gid = 65534, 65533
	if err := os.Chown(spool, uid, gid); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runDKIMCmd("keygen", "example.test", "s2026", "--type", "ed25519", "-c", cfg)
	if code != 0 || !strings.Contains(errs, "given to uid 65534") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, p := range []string{"keys", "keys/example.key"} {
		st, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if s := st.Sys().(*syscall.Stat_t); s.Uid != uid || s.Gid != gid {
			t.Errorf("%s owned by %d:%d, want the queue's %d:%d", p, s.Uid, s.Gid, uid, gid)
		}
	}
	// The config's own directory is not given away.
	if st, _ := os.Stat(dir); st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("%s given away", dir)
	}
}

// A key that appears between keygen's look and its write (a second keygen
// at the same moment) is kept, not replaced.
func TestDKIMWriteKeyNoClobber(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.key")
	if err := os.WriteFile(path, []byte("the published key"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := dkimsign.GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeKey(path, key, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("writeKey over an existing key: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "the published key" {
		t.Errorf("existing key replaced: %q", b)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".keygen-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if err := writeKey(path, key, true); err != nil {
		t.Fatal(err)
	}
	if _, err := dkimsign.LoadKey(path); err != nil {
		t.Errorf("replaced key: %v", err)
	}
}
