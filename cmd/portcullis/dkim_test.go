package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
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
	for name, args := range map[string][]string{
		"no verb":        {},
		"unknown verb":   {"rotate"},
		"missing arg":    {"keygen", "example.test", "-c", cfg},
		"bad type":       {"keygen", "example.test", "s", "--type", "dsa", "-c", cfg},
		"bad domain":     {"keygen", "exa mple", "s", "-c", cfg},
		"unknown option": {"keygen", "example.test", "s", "--bits", "4096"},
	} {
		t.Run(name, func(t *testing.T) {
			if code, _, _ := runDKIMCmd(args...); code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
		})
	}
	// A config that is broken otherwise is reported, exit 1.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("hostname: [\n"), 0o644)
	if code, _, _ := runDKIMCmd("keygen", "example.test", "s", "-c", bad); code != 1 {
		t.Errorf("broken config: exit %d, want 1", code)
	}
}
