package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadPartial: LoadPartial returns the config as far as it decoded
// together with every problem, each with the key path it is about, while
// Load refuses the same file.
func TestLoadPartial(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "p.yaml", minimal+`hostnme: typo
relay: {domains: [a.test], users_file: users.txt, recipients: [x]}
include: ["r.yaml"]
dkim: {sign: [{domain: a.test, selector: s, key: k.key}, {domain: "", selector: s, key: p.yaml}]}
`)
	if cfg, err := Load(path); cfg != nil || err == nil {
		t.Fatalf("Load = %v, %v; want nil and errors", cfg, err)
	}
	cfg, err := LoadPartial(path)
	var errs Errors
	if !errors.As(err, &errs) || cfg == nil {
		t.Fatalf("LoadPartial = %v, %v; want a config and Errors", cfg, err)
	}
	var keys []string
	for _, e := range errs {
		keys = append(keys, e.Key)
	}
	want := "hostnme relay.users_file relay.recipients dkim.sign[0].key dkim.sign[1].domain"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("keys %q, want %q\n%v", got, want, err)
	}
	if cfg.Path != path || cfg.Hostname != "mx.example.test" || cfg.Include[0] != filepath.Join(dir, "r.yaml") ||
		cfg.Relay.UsersFile != filepath.Join(dir, "users.txt") || cfg.Relay.Recipients != "" {
		t.Errorf("partial config: %+v", cfg)
	}
	for key, about := range map[string]bool{
		"relay.users_file": true, "relay": true, "relay.recipients": true, "relay.domains": false,
		"dkim.sign[0]": true, "dkim.sign": true, "dkim.sign[1].key": false, "dkim.sign[1]": true, "dkim.sign[2]": false,
		"include": false, "hostname": false, "hostnme": true, "relay.users_files": false,
	} {
		if errs.About(key) != about {
			t.Errorf("About(%q) = %v, want %v", key, !about, about)
		}
	}
}

// TestLoadPartialNothingToGoOn: a file that is not one YAML document (or
// cannot be read) gives no config.
func TestLoadPartialNothingToGoOn(t *testing.T) {
	dir := t.TempDir()
	for _, text := range []string{"hostname: [a\n", minimal + "---\nhostname: b\n"} {
		if cfg, err := LoadPartial(write(t, dir, "p.yaml", text)); cfg != nil || err == nil {
			t.Errorf("%q: got %v, %v", text, cfg, err)
		}
	}
	if cfg, err := LoadPartial(filepath.Join(dir, "none.yaml")); cfg != nil || err == nil {
		t.Errorf("missing file: got %v, %v", cfg, err)
	}
	cfg, err := ParsePartialIn([]byte(minimal), "m.yaml", dir)
	if cfg == nil || err != nil {
		t.Errorf("clean: got %v, %v", cfg, err)
	}
}
