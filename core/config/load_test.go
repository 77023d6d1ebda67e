package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest valid config; cases append to or replace it.
const minimal = `hostname: mx.example.test
listeners:
  - name: mx
    address: "127.0.0.1:2525"
`

// writeCert writes a self-signed cert.pem and key.pem into dir.
func writeCert(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"mx.example.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	write(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})))
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadValid(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir)
	write(t, dir, "users.txt", "alice:{plain}secret\n")
	write(t, dir, "isp.pass", "hunter2\n")
	write(t, dir, "dkim/k.key", "x")
	path := write(t, dir, "p.yaml", `hostname: MX.example.test
listeners:
  - {name: mx, address: ":25", tls: starttls, auth: optional}
  - {name: sub, address: "[::1]:587", tls: implicit, auth: required, proxy_protocol: true,
     trusted_proxies: ["10.0.0.1", "192.168.1.0,255.255.255.0", "2001:db8::/32"]}
tls: {cert: cert.pem, key: key.pem}
relay:
  domains: [Example.TEST, "*.sub.example.test", .other.test]
  networks: ["127.0.0.0/8", "::1"]
  users_file: users.txt
routes:
  - {domains: [example.test], next_hop: "10.0.0.5:25"}
  - domains: ["*"]
    next_hop: "smtp.isp.example:587"
    auth: {username: u, password_file: isp.pass}
    tls: required
    skip_local: true
queue: {retry: [1m, 1d12h], max_age: 5d, workers: 3}
dkim: {sign: [{domain: example.test, selector: s1, key: dkim/k.key}]}
include: ["rules.d/*.yaml"]
stages: [{name: a}]
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listener 0 tls", cfg.Listeners[0].TLS, "starttls"},
		{"default route tls", cfg.Routes[0].TLS, "opportunistic"},
		{"default concurrency", cfg.Routes[1].Concurrency, 20},
		{"domain lower-cased", cfg.Relay.Domains[0], "example.test"},
		{"bare address is /128", cfg.Relay.Networks[1].Prefix.String(), "::1/128"},
		{"address,mask", cfg.Listeners[1].TrustedProxies[1].Prefix.String(), "192.168.1.0/24"},
		{"cert resolved", cfg.TLS.Cert, filepath.Join(dir, "cert.pem")},
		{"password_file resolved", cfg.Routes[1].Auth.PasswordFile, filepath.Join(dir, "isp.pass")},
		{"queue dir resolved", cfg.Queue.Dir, filepath.Join(dir, "spool")},
		{"state resolved", cfg.State.Path, filepath.Join(dir, "state.db")},
		{"include resolved", cfg.Include[0], filepath.Join(dir, "rules.d/*.yaml")},
		{"days", cfg.Queue.Retry[1].D(), 36 * time.Hour},
		{"max_age", cfg.Queue.MaxAge.D(), 120 * time.Hour},
		{"default limit kept", cfg.Limits.MaxRecipients, 100},
		{"dir", cfg.Dir, dir},
		{"path", cfg.Path, path},
		{"stages kept with line", cfg.Stages.Line, 21},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}
}

func TestQuickstartLoads(t *testing.T) {
	cfg, err := Load("../../examples/quickstart/portcullis.yaml")
	if err != nil {
		t.Fatalf("quickstart config: %v", err)
	}
	if cfg.Hostname != "mx.example.test" || cfg.Listeners[0].Address != "127.0.0.1:2525" {
		t.Errorf("unexpected quickstart: %+v", cfg)
	}
}

func TestErrorsFormat(t *testing.T) {
	_, err := Parse([]byte("a: 1\nb: 2\n"+minimal), "f.yaml")
	want := "f.yaml:1:1: unknown key \"a\"\nf.yaml:2:1: unknown key \"b\""
	if err == nil || err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if _, ok := err.(Errors); !ok {
		t.Errorf("error is %T, want Errors", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml")); err == nil || !os.IsNotExist(err) {
		t.Errorf("got %v, want a not-exist error", err)
	}
}

func TestDefaultsDocumented(t *testing.T) {
	d := Defaults()
	if d.Limits.MaxLineLength != 4096 || d.Queue.Workers != 50 || len(d.Queue.Retry) != 7 || d.Queue.Bounce != "local" {
		t.Errorf("defaults drifted from the contract: %+v", d)
	}
	host, _ := os.Hostname()
	if d.Hostname != host {
		t.Errorf("hostname %q, want os.Hostname %q", d.Hostname, host)
	}
	if strings.TrimSpace(d.Log.Format) != "text" || d.State.Path != "state.db" {
		t.Errorf("log/state defaults: %+v %+v", d.Log, d.State)
	}
}

func TestTLSPairMustLoad(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir)
	other := t.TempDir()
	writeCert(t, other) // a key that does not match dir's certificate
	cases := []struct{ name, key, want string }{
		{"matching", "key.pem", ""},
		{"mismatched key", filepath.Join(other, "key.pem"), "p.yaml:5:13: tls: cannot load certificate and key: tls: private key does not match public key"},
		{"not a key", "p.yaml", "p.yaml:5:13: tls: cannot load certificate and key: tls: failed to find any PEM data in key input"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := write(t, dir, "p.yaml", minimal+"tls: {cert: cert.pem, key: "+c.key+"}\n")
			_, err := Load(path)
			got := ""
			if err != nil {
				got = strings.TrimPrefix(err.Error(), dir+"/")
			}
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestContractExample loads the example of the outside contract, with the
// files it names created beside it.
func TestContractExample(t *testing.T) {
	b, err := os.ReadFile("testdata/contract.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeCert(t, dir)
	for _, f := range []string{"users.txt", "recipients.txt", "isp.pass", "dkim/example.test.s2026.key"} {
		write(t, dir, f, "")
	}
	cfg, err := Load(write(t, dir, "portcullis.yaml", string(b)))
	if err != nil {
		t.Fatalf("the contract's example does not load:\n%v", err)
	}
	if got := cfg.Relay.Networks[2].Prefix.String(); got != "192.168.1.0/24" {
		t.Errorf("address,mask network = %s", got)
	}
	if line, col := cfg.IncludePos(0); line != 37 || col != 11 || cfg.Include[0] != filepath.Join(dir, "rules.d/*.yaml") {
		t.Errorf("include %q at %d:%d, want the resolved glob at 37:11", cfg.Include[0], line, col)
	}
	if cfg.Routes[1].Auth == nil || !cfg.Routes[1].SkipLocal || cfg.Queue.Bounce != "local" {
		t.Errorf("routes/queue: %+v %+v", cfg.Routes[1], cfg.Queue)
	}
}

// With state.redis, a state.path is still resolved from the config file:
// stages that keep local files (bayes) derive theirs from it.
func TestStatePathResolvedWithRedis(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "p.yaml", minimal+"state: {path: st/state.db, redis: \"redis://127.0.0.1:6379/0\"}\n")
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "st", "state.db"); cfg.State.Path != want {
		t.Errorf("state.path = %q, want %q", cfg.State.Path, want)
	}
}
