package config

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOneDocument: YAML reads only the first document of a stream, so a
// config with a second one ("---" or "..." and more keys, as a pasted or
// concatenated file has) would lose the rest without a word.
func TestOneDocument(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"second document", minimal + "---\nlimits: {max_connections: 5}\n",
			"f.yaml:6:1: a second YAML document (after --- or ...) is not allowed: the config is one document"},
		{"after document end", minimal + "...\n---\nhostname: other.test\n",
			"f.yaml:7:1: a second YAML document (after --- or ...) is not allowed: the config is one document"},
		{"syntax error in the second", minimal + "---\n\thostname: x\n",
			"f.yaml:6:1: found character that cannot start any token"},
		{"leading marker and trailing empty document", "---\n" + minimal + "---\n", ""},
		{"trailing null document", minimal + "--- ~\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseIn([]byte(c.yaml), "f.yaml", t.TempDir())
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestMergeKeys: YAML merge keys ("<<: *anchor") are how a config shares
// settings between listeners or routes; keys written beside the merge
// win over merged ones, earlier merged mappings over later ones.
func TestMergeKeys(t *testing.T) {
	cfg, err := ParseIn([]byte(`hostname: mx.example.test
listeners:
  - &mx {name: mx, address: "127.0.0.1:25", proxy_protocol: true, trusted_proxies: ["10.0.0.1"]}
  - <<: *mx
    name: sub
    address: "127.0.0.1:587"
routes:
  - &r {domains: [a.test], next_hop: "10.0.0.5:25", concurrency: 3}
  - <<: [{tls: none, concurrency: 7}, *r]
    domains: [b.test]
`), "f.yaml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Listeners[1]
	if l.Name != "sub" || l.Address != "127.0.0.1:587" || !l.ProxyProtocol || len(l.TrustedProxies) != 1 {
		t.Errorf("merged listener: %+v", l)
	}
	r := cfg.Routes[1]
	if r.Domains[0] != "b.test" || r.NextHop != "10.0.0.5:25" || r.TLS != "none" || r.Concurrency != 7 {
		t.Errorf("merged route: %+v", r)
	}
	_, err = ParseIn([]byte(minimal+"limits: {<<: {max_conections: 5}}\nqueue: {<<: 5}\n"), "f.yaml", t.TempDir())
	want := "f.yaml:5:15: unknown key \"limits.max_conections\" (did you mean \"max_connections\"?)\n" +
		"f.yaml:6:13: queue: a merge (<<) takes a mapping or a list of mappings"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestMergeBomb: merges through aliases cannot make the decoder's work
// explode (the "billion laughs" of merge keys), nor loop on a mapping that
// merges itself.
func TestMergeBomb(t *testing.T) {
	for _, y := range []string{minimal + "limits: &l {<<: *l}\n", minimal + "limits: &l {<<: [*l, *l], max_connections: 3}\n"} {
		_, err := ParseIn([]byte(y), "f.yaml", t.TempDir())
		if err == nil || !strings.HasPrefix(err.Error(), "f.yaml:5:9: limits: a merge (<<) takes in the mapping it is part of") {
			t.Errorf("self merge: %v", err)
		}
	}
	var b strings.Builder
	b.WriteString(minimal + "limits:\n  <<: &a0 {max_connections: 1}\n")
	b.WriteString("x:\n")
	for i := 1; i < 40; i++ {
		b.WriteString("  - &a" + itoa(i) + " {<<: [*a" + itoa(i-1) + ", *a" + itoa(i-1) + "]}\n")
	}
	b.WriteString("queue: {<<: *a39}\n")
	start := time.Now()
	_, err := ParseIn([]byte(b.String()), "f.yaml", t.TempDir())
	if err == nil {
		t.Fatal("no error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestSyntaxErrorPositions: errors the YAML reader gives without a line
// (control characters, bytes that are not UTF-8) are positioned too.
func TestSyntaxErrorPositions(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"control character", minimal + "log: {format: \"text\x01\"}\n", "f.yaml:5:20: control characters are not allowed"},
		{"not UTF-8", minimal + "# caf\xe9\n", "f.yaml:5:6: incomplete UTF-8 octet sequence"},
		// yaml.v3 names the start of the sequence (line 5); the bad line is 9.
		{"sequence item misindented", minimal + "routes:\n  - domains: [a.test]\n    next_hop: 127.0.0.1:25\n  - domains: [b.test]\n   next_hop: 127.0.0.1:26\n",
			"f.yaml:9:1: did not find expected '-' indicator"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseIn([]byte(c.yaml), "f.yaml", t.TempDir())
			if err == nil || err.Error() != c.want {
				t.Errorf("got %v, want %s", err, c.want)
			}
		})
	}
}

// TestDurationErrorQuotesValue: the message quotes the value as written,
// not what was left after the days.
func TestDurationErrorQuotesValue(t *testing.T) {
	for _, in := range []string{"1dx", "5d 3h", "1d-5m"} {
		if _, err := ParseDuration(in); err == nil || !strings.Contains(err.Error(), `"`+in+`"`) {
			t.Errorf("ParseDuration(%q): %v", in, err)
		}
	}
}

// TestQuarantineApartFromQueue: a quarantine that is the queue's directory
// under another name (a symbolic link, an absolute spelling) would have
// its mail delivered by the queue; a quarantine beside the queue, or one
// whose name merely starts with the queue's, is fine.
func TestQuarantineApartFromQueue(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "spool"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("spool", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, queue string
		refused     bool
	}{
		{"symbolic link to the queue", "{dir: spool, quarantine_dir: link}", true},
		{"inside, through a link", "{dir: spool, quarantine_dir: link/new/q}", true},
		{"absolute spelling", "{dir: spool, quarantine_dir: " + dir + "//spool/.}", true},
		{"beside", "{dir: spool, quarantine_dir: quarantine}", false},
		{"shared prefix", "{dir: spool, quarantine_dir: spool2}", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseIn([]byte(minimal+"queue: "+c.queue+"\n"), "f.yaml", dir)
			if got := err != nil && strings.Contains(err.Error(), "queue.quarantine_dir:"); got != c.refused {
				t.Errorf("refused %v, want %v (%v)", got, c.refused, err)
			}
		})
	}
}

// TestDNSServerDefaultPort: a bare address in dns.servers is port 53, as in
// resolv.conf, which takes a link-local IPv6 server with its zone
// (nameserver fe80::1%eth0); a port given is kept (a name without one is
// still refused: TestBadConfigs).
func TestDNSServerDefaultPort(t *testing.T) {
	cfg, err := ParseIn([]byte(minimal+`dns: {servers: ["127.0.0.1", "::1", "[2001:db8::1]", "127.0.0.1:5353", "[::1]:53", "fe80::1%eth0", "[fe80::1%eth0]"]}`+"\n"), "f.yaml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:53", "[::1]:53", "[2001:db8::1]:53", "127.0.0.1:5353", "[::1]:53", "[fe80::1%eth0]:53", "[fe80::1%eth0]:53"}
	if !slices.Equal(cfg.DNS.Servers, want) {
		t.Errorf("servers %q, want %q", cfg.DNS.Servers, want)
	}
}

// TestDNSServerHalfBracketed: an address with one bracket is a typing
// mistake, refused as written, not taken for the address inside.
func TestDNSServerHalfBracketed(t *testing.T) {
	for _, s := range []string{"[::1", "::1]", "[2001:db8::1]]"} {
		_, err := ParseIn([]byte(minimal+`dns: {servers: ["`+s+`"]}`+"\n"), "f.yaml", t.TempDir())
		if want := `dns.servers[0]: "` + s + `" is not host:port`; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %s", s, err, want)
		}
	}
}
