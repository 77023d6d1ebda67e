//go:debug rsa1024min=0

package dkimsign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/delivery"
	"github.com/portcullis-mta/portcullis/core/queue"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

var _ delivery.Signer = (*Signer)(nil)

var (
	keyOnce     sync.Once
	rsaK, edK   crypto.Signer
	errKeyMaker error
)

// testKeys makes one key of each kind per test binary (RSA 2048 is slow).
func testKeys(t testing.TB) (rsaKey, edKey crypto.Signer) {
	t.Helper()
	keyOnce.Do(func() {
		if rsaK, errKeyMaker = GenerateKey("rsa"); errKeyMaker == nil {
			edK, errKeyMaker = GenerateKey("ed25519")
		}
	})
	if errKeyMaker != nil {
		t.Fatal(errKeyMaker)
	}
	return rsaK, edK
}

// publish starts a DNS server holding the key records, as keygen prints them.
func publish(t *testing.T, keys ...*Key) *dnsutiltest.Server {
	t.Helper()
	var rrs []string
	for _, k := range keys {
		line, err := Record(k.Domain, k.Selector, k.Signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, strings.Replace(line, " IN TXT ", " 300 IN TXT ", 1))
	}
	return dnsutiltest.New(t, rrs...)
}

// verify checks msg with go-msgauth against srv, as a receiver would.
func verify(t *testing.T, srv *dnsutiltest.Server, msg []byte) []*dkim.Verification {
	t.Helper()
	r := &dnsutil.Resolver{Servers: []string{srv.Addr}}
	lookup := func(name string) ([]string, error) {
		a, err := r.Lookup(context.Background(), name, dns.TypeTXT)
		if err != nil {
			return nil, err
		}
		return a.Texts(), nil
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

const testMsg = "From: =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?= <taro@example.test>\r\nTo: <a@dest.test>\r\n" +
	"Subject: hello\r\nDate: Fri, 27 Nov 2026 07:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n\r\nHello.\r\n"

var trusted = &queue.Envelope{From: "taro@example.test", Client: queue.Client{Trusted: true}}

func signAll(t *testing.T, s *Signer, env *queue.Envelope, in io.Reader) []byte {
	t.Helper()
	r, err := s.Sign(env, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A message signed at delivery verifies against the published record,
// for each key type and for both at once.
func TestSignVerifies(t *testing.T) {
	rk, ek := testKeys(t)
	rsaKey := &Key{Domain: "example.test", Selector: "r2026", Signer: rk}
	edKey := &Key{Domain: "example.test", Selector: "e2026", Signer: ek}
	srv := publish(t, rsaKey, edKey)
	tests := []struct {
		name string
		keys []*Key
	}{
		{"rsa", []*Key{rsaKey}},
		{"ed25519", []*Key{edKey}},
		{"both", []*Key{rsaKey, edKey}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := signAll(t, New(tc.keys), trusted, strings.NewReader(testMsg))
			if !strings.HasSuffix(string(out), testMsg) {
				t.Fatalf("message changed under the signatures:\n%s", out)
			}
			vs := verify(t, srv, out)
			if len(vs) != len(tc.keys) {
				t.Fatalf("%d signatures, want %d", len(vs), len(tc.keys))
			}
			for _, v := range vs {
				if v.Err != nil || v.Domain != "example.test" {
					t.Errorf("signature d=%s: %v", v.Domain, v.Err)
				}
			}
		})
	}
}

// A large message from a reader that cannot seek is spilled to a file; one
// that can seek is read twice; both come out whole and verify.
func TestSignLargeAndSeekable(t *testing.T) {
	_, ek := testKeys(t)
	k := &Key{Domain: "example.test", Selector: "e", Signer: ek}
	srv := publish(t, k)
	s := New([]*Key{k})
	s.tempDir = t.TempDir()
	big := testMsg + strings.Repeat("0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n", MemLimit/60)
	prefix := "junk before the message"
	seek := strings.NewReader(prefix + big)
	if _, err := seek.Seek(int64(len(prefix)), io.SeekStart); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]io.Reader{
		"spilled":  struct{ io.Reader }{strings.NewReader(big)},
		"seekable": seek,
	} {
		t.Run(name, func(t *testing.T) {
			out := signAll(t, s, trusted, in)
			if !strings.HasSuffix(string(out), big) || !strings.HasPrefix(string(out), "DKIM-Signature:") {
				t.Fatalf("output is not signature + message (%d bytes)", len(out))
			}
			if vs := verify(t, srv, out); len(vs) != 1 || vs[0].Err != nil {
				t.Fatalf("verification: %+v", vs)
			}
		})
	}
	if left, _ := os.ReadDir(s.tempDir); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestSignWhen(t *testing.T) {
	_, ek := testKeys(t)
	s := New([]*Key{{Domain: "example.test", Selector: "e", Signer: ek}, {Domain: "xn--r8jz45g.test", Selector: "e", Signer: ek}})
	idn := strings.Replace(testMsg, "taro@example.test", "taro@例え.test", 1)
	sub := strings.Replace(testMsg, "taro@example.test", "taro@mail.example.test", 1)
	mixed := strings.Replace(testMsg, "<taro@example.test>", "<taro@example.test>, <b@other.test>", 1)
	tests := []struct {
		name   string
		env    *queue.Envelope
		msg    string
		signed bool
	}{
		{"trusted network", trusted, testMsg, true},
		{"authenticated", &queue.Envelope{Client: queue.Client{Authenticated: true, User: "taro"}}, testMsg, true},
		{"our DSN", &queue.Envelope{IsDSN: true}, testMsg, true},
		{"subdomain signed by parent key", trusted, sub, true},
		{"Unicode From domain, key in A-label form", trusted, idn, true},
		{"untrusted client", &queue.Envelope{Client: queue.Client{IP: "198.51.100.7"}}, testMsg, false},
		{"no key for the From domain", trusted, strings.Replace(testMsg, "example.test>", "other.test>", 1), false},
		{"From with two domains", trusted, mixed, false},
		{"no From", trusted, "Subject: x\r\n\r\nbody\r\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := string(signAll(t, s, tc.env, strings.NewReader(tc.msg)))
			if got := strings.HasPrefix(out, "DKIM-Signature:"); got != tc.signed {
				t.Errorf("signed = %v, want %v", got, tc.signed)
			}
			if !strings.HasSuffix(out, tc.msg) {
				t.Errorf("message changed: %q", out)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	rk, ek := testKeys(t)
	dir := t.TempDir()
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk.(*rsa.PrivateKey))})
	small, err := rsa.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 4096)), 512)
	if err != nil {
		t.Fatal(err)
	}
	smallPEM, _ := MarshalKey(small)
	rsaPEM, _ := MarshalKey(rk)
	edPEM, _ := MarshalKey(ek)
	tests := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"pkcs8 rsa", rsaPEM, true},
		{"pkcs8 ed25519", edPEM, true},
		{"pkcs1 rsa", pkcs1, true},
		{"rsa 512 too small", smallPEM, false},
		{"not pem", []byte("hello"), false},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadKey(path); (err == nil) != tc.ok {
				t.Errorf("LoadKey: %v, want ok=%v", err, tc.ok)
			}
		})
	}
	// A key others may read or replace is refused, saying how to fix it;
	// the owner's group may read it.
	for _, m := range []os.FileMode{0o644, 0o604, 0o660, 0o602} {
		p := filepath.Join(dir, fmt.Sprintf("mode%o", m))
		if err := os.WriteFile(p, edPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, m)
		if _, err := LoadKey(p); err == nil || !strings.Contains(err.Error(), "chmod 600 "+p) {
			t.Errorf("LoadKey of a mode %o key: %v, want a refusal that says chmod 600", m, err)
		}
	}
	grp := filepath.Join(dir, "group-readable")
	if err := os.WriteFile(grp, edPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(grp, 0o640)
	if _, err := LoadKey(grp); err != nil {
		t.Errorf("LoadKey of a 0640 key: %v", err)
	}
	cfg := config.DKIM{Sign: []config.DKIMKey{{Domain: "example.test", Selector: "a", Key: filepath.Join(dir, "pkcs1_rsa")}}}
	if s, err := FromConfig(cfg); err != nil || len(s.keysFor("example.test")) != 1 {
		t.Errorf("FromConfig: %v", err)
	}
	cfg.Sign[0].Key = filepath.Join(dir, "missing")
	if _, err := FromConfig(cfg); err == nil {
		t.Error("FromConfig with a missing key file succeeded")
	}
}

// The printed record is valid zone syntax with strings of at most 255
// bytes that join back to the key record.
func TestRecord(t *testing.T) {
	rk, ek := testKeys(t)
	for _, k := range []crypto.Signer{rk, ek} {
		line, err := Record("example.test", "s2026", k.Public())
		if err != nil {
			t.Fatal(err)
		}
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		txt := rr.(*dns.TXT)
		want, _ := RecordValue(k.Public())
		if txt.Hdr.Name != "s2026._domainkey.example.test." || strings.Join(txt.Txt, "") != want {
			t.Errorf("record %q", line)
		}
		for _, s := range txt.Txt {
			if len(s) > 255 {
				t.Errorf("string of %d bytes", len(s))
			}
		}
	}
}

var _ delivery.Signer = (*Live)(nil)

// A reload swaps the keys; a bad one keeps the old.
func TestLiveReload(t *testing.T) {
	rk, ek := testKeys(t)
	dir := t.TempDir()
	write := func(name string, k crypto.Signer) string {
		data, err := MarshalKey(k)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srv := publish(t, &Key{Domain: "example.test", Selector: "r", Signer: rk}, &Key{Domain: "example.test", Selector: "e", Signer: ek})
	var l Live
	if out := signAll(t, &Signer{}, trusted, strings.NewReader(testMsg)); string(out) != testMsg {
		t.Fatal("a Signer without keys changed the message")
	}
	if out := signAllLive(t, &l); out != testMsg {
		t.Fatal("Live before Load changed the message")
	}
	selector := func() string {
		vs := verify(t, srv, []byte(signAllLive(t, &l)))
		if len(vs) != 1 || vs[0].Err != nil {
			t.Fatalf("verification: %+v", vs)
		}
		_, s, _ := strings.Cut(signAllLive(t, &l), " s=")
		return s[:1]
	}
	if err := l.Load(config.DKIM{Sign: []config.DKIMKey{{Domain: "example.test", Selector: "r", Key: write("r.key", rk)}}}); err != nil {
		t.Fatal(err)
	}
	if s := selector(); s != "r" {
		t.Errorf("selector %q, want r", s)
	}
	if err := l.Load(config.DKIM{Sign: []config.DKIMKey{{Domain: "example.test", Selector: "e", Key: filepath.Join(dir, "missing")}}}); err == nil {
		t.Fatal("Load of a missing key succeeded")
	}
	if s := selector(); s != "r" {
		t.Errorf("selector after a failed reload %q, want r (kept)", s)
	}
	if err := l.Load(config.DKIM{Sign: []config.DKIMKey{{Domain: "example.test", Selector: "e", Key: write("e.key", ek)}}}); err != nil {
		t.Fatal(err)
	}
	if s := selector(); s != "e" {
		t.Errorf("selector after rotation %q, want e", s)
	}
}

func signAllLive(t *testing.T, l *Live) string {
	t.Helper()
	r, err := l.Sign(trusted, strings.NewReader(testMsg))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// A key's header list is what h= signs; one without From is refused at load.
func TestHeaderList(t *testing.T) {
	_, ek := testKeys(t)
	k := &Key{Domain: "example.test", Selector: "e", Signer: ek, Headers: []string{"From", "Subject"}}
	srv := publish(t, k)
	out := signAll(t, New([]*Key{k}), trusted, strings.NewReader(testMsg))
	vs := verify(t, srv, out)
	if len(vs) != 1 || vs[0].Err != nil || strings.Join(vs[0].HeaderKeys, ":") != "From:Subject" {
		t.Fatalf("verification %+v", vs)
	}
	data, _ := MarshalKey(ek)
	path := filepath.Join(t.TempDir(), "e.key")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.DKIM{Sign: []config.DKIMKey{{Domain: "example.test", Selector: "e", Key: path, Headers: []string{"Subject"}}}}
	if _, err := FromConfig(cfg); err == nil || !strings.Contains(err.Error(), "From") {
		t.Errorf("FromConfig with h= lacking From: %v", err)
	}
}

// A field a reader trusts (From, To, Cc, Subject, Reply-To) added on the
// way, on top of the signed one or where there was none, breaks the
// signature: the default list over-signs them (RFC 6376 8.15, 5.4.2).
// Received and Return-Path, which relays add, are not signed (5.4.1).
func TestOversignedHeaders(t *testing.T) {
	_, ek := testKeys(t)
	k := &Key{Domain: "example.test", Selector: "e", Signer: ek}
	srv := publish(t, k)
	msg := strings.Replace(testMsg, "Subject:", "Cc: <c@dest.test>\r\nReply-To: <r@example.test>\r\nSubject:", 1)
	signed := string(signAll(t, New([]*Key{k}), trusted, strings.NewReader(msg)))
	_, tags, _ := strings.Cut(signed, " h=")
	h := strings.ToLower(strings.Join(strings.Fields(strings.SplitN(tags, ";", 2)[0]), ""))
	for _, f := range []string{"received", "return-path"} {
		if strings.Contains(h, f) {
			t.Errorf("h=%s signs %s", h, f)
		}
	}
	// The signature field is first; an attacker's field goes right below it.
	at := strings.Index(signed, "From: ")
	tests := []struct {
		name, added string
		ok          bool
	}{
		{"a relay's Received", "Received: from relay.example by mx.example; Fri, 27 Nov 2026 07:01:00 +0000\r\n", true},
		{"a second From", "From: ceo@example.test\r\n", false},
		{"a second Subject", "Subject: Urgent: wire the money\r\n", false},
		{"a second To", "To: someone@else.test\r\n", false},
		{"a second Cc", "Cc: someone@else.test\r\n", false},
		{"a second Reply-To", "Reply-To: thief@else.test\r\n", false},
		{"a Sender where there was none", "Sender: thief@else.test\r\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := signed[:at] + tc.added + signed[at:]
			vs := verify(t, srv, []byte(msg))
			if len(vs) != 1 || (vs[0].Err == nil) != tc.ok {
				t.Errorf("verifies = %v, want %v (%+v)", len(vs) == 1 && vs[0].Err == nil, tc.ok, vs)
			}
		})
	}
}

// A message may be a header alone, with no empty line (RFC 5322 3.5): it
// is signed with an empty body and goes out with the empty line added, so
// that what is sent is what was signed; it went out unsigned.
func TestSignHeaderOnly(t *testing.T) {
	rk, ek := testKeys(t)
	keys := []*Key{{Domain: "example.test", Selector: "r", Signer: rk}, {Domain: "example.test", Selector: "e", Signer: ek}}
	srv := publish(t, keys...)
	s := New(keys)
	s.tempDir = t.TempDir()
	head := "From: <taro@example.test>\r\nTo: <a@dest.test>\r\nSubject: header only\r\n"
	tests := []struct{ name, msg, sent string }{
		{"no empty line", head, head + "\r\n"},
		{"no end of line", strings.TrimSuffix(head, "\r\n"), head + "\r\n"},
		{"empty line, empty body", head + "\r\n", head + "\r\n"},
	}
	for _, tc := range tests {
		for name, in := range map[string]io.Reader{
			"spilled":  struct{ io.Reader }{strings.NewReader(tc.msg)},
			"seekable": strings.NewReader(tc.msg),
		} {
			t.Run(tc.name+", "+name, func(t *testing.T) {
				out := string(signAll(t, s, trusted, in))
				i := strings.Index(out, "\r\nFrom: <") + 2 // after the signatures
				if sigs, sent := out[:i], out[i:]; sent != tc.sent || strings.Count(sigs, "DKIM-Signature:") != 2 {
					t.Fatalf("sent %q", out)
				}
				vs := verify(t, srv, []byte(out))
				if len(vs) != 2 {
					t.Fatalf("%d signatures verified, want 2", len(vs))
				}
				for _, v := range vs {
					if v.Err != nil {
						t.Errorf("d=%s: %v", v.Domain, v.Err)
					}
				}
			})
		}
	}
}
