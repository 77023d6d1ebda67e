package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/dkimsign"
)

// TestCheckReportsAll: one run of `check` reports every independent
// problem, whichever part it is in: the config's own problems do not hide
// the files it names (users, DKIM keys) nor the rule files, and a problem
// in one stage's entry does not hide another stage's plugin or config.
// What follows from a problem already reported is not reported again (the
// "no cascade" cases). In files and want, "D/" is the test's directory; a
// file named *.key gets a fresh ed25519 DKIM key (its text is its mode:
// "0600" or "0644").
func TestCheckReportsAll(t *testing.T) {
	const base = "hostname: a.test\nlisteners: [{name: a, address: '127.0.0.1:2525'}]\ndns: {servers: ['127.0.0.1:53']}\n"
	cases := []struct {
		name  string
		files map[string]string // c.yaml is the config
		want  []string
	}{
		{"config problems do not hide rule files", map[string]string{
			"c.yaml": base + "include: ['r.yaml']\nhostnme: typo\n",
			"r.yaml": `stages:
  - {name: bl, plugin: dnsbl, on_error: explode, config: {zones: [bl.example.test]}}
rules:
  - {name: listed, when: 'results.bl.verdict == "fail"', action: reject, reply: '451 4.7.1 Later'}
`,
		}, []string{
			`D/c.yaml:5:1: unknown key "hostnme" (did you mean "hostname"?)`,
			`D/r.yaml:2:41: bad on_error "explode": want continue, tempfail or reject`,
			`D/r.yaml:4:82: reply code 451 does not fit action reject (want 5xx)`,
		}},
		{"a bad certificate does not hide list files", map[string]string{
			"c.yaml": base + "tls: {cert: cert.pem, key: key.pem}\nrelay: {domains: [a.test], users_file: users.txt}\n" +
				"dkim: {sign: [{domain: a.test, selector: s, key: a.key}]}\n",
			"cert.pem":  "not a certificate\n",
			"key.pem":   "not a key\n",
			"users.txt": "alice:{plain}secret\nbob:$apr1$a$b\ncarol\n:{plain}x\n",
			"a.key":     "0644",
		}, []string{
			"D/c.yaml:4:13: tls: cannot load certificate and key: tls: failed to find any PEM data in certificate input",
			`D/users.txt:2:1: user "bob": not a bcrypt hash (make one with htpasswd -nbB) or {plain}secret`,
			"D/users.txt:3:1: want name:hash",
			"D/users.txt:4:1: want name:hash",
			"D/c.yaml:6:50: dkim.sign[0]: D/a.key: unsafe key file: mode 0644 lets other users read or replace it; " +
				"chmod 600 D/a.key (or 640 with the daemon's group)",
		}},
		{"a bad stage does not hide the others", map[string]string{
			"c.yaml": base + "include: ['r.yaml']\n",
			"r.yaml": `stages:
  - name: one
    plugin: dnsbl
    on_error: explode
    config: {zones: [bl.example.test]}
  - name: two
    plugin: nosuchbuiltin
  - name: three
    plugin: dnsbl
    config: {bogus: 1}
`,
		}, []string{
			`D/r.yaml:4:15: bad on_error "explode": want continue, tempfail or reject`,
			`D/r.yaml:7:13: stage "two": plugin "nosuchbuiltin" is not a built-in (` + builtinNames() + `) nor an executable: D/nosuchbuiltin: no such file or directory`,
			`D/r.yaml:10:5: stage three: config refused: unknown key "bogus" (want zones, threshold, timeout, max_ttl, negative_ttl, cache_size, check_private)`,
		}},
		{"no cascade from config keys", map[string]string{
			// An include entry is bad: the rule files are not guessed at
			// (the glob is not reported again, nor r.yaml's stage);
			// users_file is missing and recipients no file name: the list
			// checks keep quiet; dkim.sign[0] has bad headers (its key is
			// still read: it is fine) and [1] a missing key; [2] is
			// independent and reported.
			"c.yaml": base + "include: ['[a-', 'r.yaml']\nrelay: {domains: [a.test], users_file: users.txt, recipients: [x]}\n" +
				"dkim: {sign: [{domain: a.test, selector: s, key: a.key, headers: [Subject]}, {domain: a.test, selector: t, key: none.key}, " +
				"{domain: a.test, selector: u, key: c.key}]}\n",
			"r.yaml": "stages: [{name: x, plugin: nosuchbuiltin}]\n",
			"a.key":  "0600",
			"c.key":  "0644",
		}, []string{
			"D/c.yaml:4:11: include[0]: bad pattern: syntax error in pattern",
			"D/c.yaml:5:40: relay.users_file: D/users.txt: no such file or directory",
			"D/c.yaml:5:63: relay.recipients: want a single value, not a list",
			"D/c.yaml:6:66: dkim.sign[0].headers: must include From (RFC 6376 5.4)",
			"D/c.yaml:6:113: dkim.sign[1].key: D/none.key: no such file or directory",
			"D/c.yaml:6:159: dkim.sign[2]: D/c.key: unsafe key file: mode 0644 lets other users read or replace it; " +
				"chmod 600 D/c.key (or 640 with the daemon's group)",
		}},
		{"no cascade within rule files", map[string]string{
			// state.redis is bad: greylist is asked with the default
			// state, not refused for it. Stage entries with problems
			// (config no mapping, a duplicate) get no plugin or config
			// check; the clean stage with a bad config is reported.
			"c.yaml": base + "state: {redis: 'http://x'}\ninclude: ['r.yaml']\n",
			"r.yaml": `stages:
  - {name: grey, plugin: greylist, config: {delay: 1m}}
  - {name: words, plugin: textfilter, config: [1]}
  - {name: grey, plugin: nosuchbuiltin, config: {bogus: 1}}
  - {name: bl, plugin: dnsbl, config: {bogus: 1}}
`,
		}, []string{
			`D/c.yaml:4:16: state.redis: not a redis:// or rediss:// URL; want redis://[:PASSWORD@]HOST:PORT/DB or rediss://...`,
			"D/r.yaml:3:47: config: want a mapping, got a list",
			`D/r.yaml:4:5: duplicate stage "grey" (first at D/r.yaml:2:5)`,
			`D/r.yaml:5:31: stage bl: config refused: unknown key "bogus" (want zones, threshold, timeout, max_ttl, negative_ttl, cache_size, check_private)`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, text := range c.files {
				p := filepath.Join(dir, name)
				if strings.HasSuffix(name, ".key") {
					writeDKIMKey(t, p, text)
					continue
				}
				if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			code, out, errs := run("check", "-c", filepath.Join(dir, "c.yaml"))
			got := strings.ReplaceAll(out, dir+string(filepath.Separator), "D/")
			want := strings.Join(c.want, "\n") + "\n"
			if code != 1 || got != want {
				t.Errorf("got %d\n%s(stderr %q)\nwant 1\n%s", code, got, errs, want)
			}
		})
	}
}

// writeDKIMKey writes a fresh ed25519 signing key at path with mode
// ("0600", "0644").
func writeDKIMKey(t *testing.T, path, mode string) {
	t.Helper()
	key, err := dkimsign.GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	pem, err := dkimsign.MarshalKey(key)
	if err != nil {
		t.Fatal(err)
	}
	perm := os.FileMode(0o600)
	if mode == "0644" {
		perm = 0o644
	}
	if err := os.WriteFile(path, pem, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}
