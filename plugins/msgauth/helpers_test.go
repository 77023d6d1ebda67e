package msgauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
)

const (
	clientIP   = "192.0.2.10"
	authservID = "mx.portcullis.test"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
	edKey   ed25519.PrivateKey
)

// keys returns an RSA 2048 and an Ed25519 key, made once per test binary.
func keys(t testing.TB) (*rsa.PrivateKey, ed25519.PrivateKey) {
	t.Helper()
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
	return rsaKey, edKey
}

// keyRecord is the zone-file TXT line publishing signer's public key at
// selector._domainkey.domain (RFC 6376 3.6.1), in 255-byte strings.
func keyRecord(t testing.TB, domain, selector string, signer crypto.Signer) string {
	t.Helper()
	var k, p string
	switch pub := signer.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		k, p = "rsa", base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		k, p = "ed25519", base64.StdEncoding.EncodeToString(pub)
	}
	return txtRR(selector+"._domainkey."+domain+".", "v=DKIM1; k="+k+"; p="+p)
}

// txtRR is a TXT record line with value split into 255-byte strings.
func txtRR(name, value string) string {
	var parts []string
	for len(value) > 255 {
		parts = append(parts, `"`+value[:255]+`"`)
		value = value[255:]
	}
	parts = append(parts, `"`+value+`"`)
	return name + " 300 IN TXT " + strings.Join(parts, " ")
}

// sign signs msg for domain/selector with signer.
func sign(t testing.TB, msg, domain, selector string, signer crypto.Signer, expires time.Time) string {
	t.Helper()
	var b bytes.Buffer
	err := dkim.Sign(&b, strings.NewReader(msg), &dkim.SignOptions{
		Domain: domain, Selector: selector, Signer: signer, Expiration: expires,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-ID"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// message is a plain message from author.
func message(author string) string {
	return "From: Taro <" + author + ">\r\nTo: <rcpt@portcullis.test>\r\nSubject: hello\r\n" +
		"Date: Fri, 27 Nov 2026 07:00:00 +0000\r\nMessage-ID: <1@x.test>\r\n\r\nHello, world.\r\n"
}

// newStage configures a stage against srv with a fixed pct roll.
func newStage(t testing.TB, srv *dnsutiltest.Server, roll int) *Stage {
	t.Helper()
	s := New().(*Stage)
	s.roll = func() int { return roll }
	env := sdk.Env{StageName: "msgauth", Hostname: authservID, DNSServers: []string{srv.Addr}}
	if err := s.Configure(context.Background(), env, map[string]any{"timeout": "3s"}); err != nil {
		t.Fatal(err)
	}
	return s
}

// dataReq is a data-phase request for raw, with its header parsed as the
// host does.
func dataReq(t testing.TB, raw, helo, mailFrom string) *sdk.Request {
	t.Helper()
	return &sdk.Request{
		Phase:    sdk.PhaseData,
		Conn:     sdk.Conn{IP: clientIP, HELO: helo},
		Envelope: sdk.Envelope{From: mailFrom, Rcpts: []string{"rcpt@portcullis.test"}},
		Message:  sdk.NewBytesMessage(header(t, raw), []byte(raw)),
	}
}

// header splits raw's header into unfolded fields.
func header(t testing.TB, raw string) []sdk.HeaderField {
	t.Helper()
	head, _, ok := strings.Cut(raw, "\r\n\r\n")
	if !ok {
		t.Fatal("message without header end")
	}
	var out []sdk.HeaderField
	for _, line := range strings.Split(head, "\r\n") {
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1].Value += line
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		out = append(out, sdk.HeaderField{Name: name, Value: strings.TrimSpace(value)})
	}
	return out
}

func check(t testing.TB, s *Stage, req *sdk.Request) *sdk.Result {
	t.Helper()
	res, err := s.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
