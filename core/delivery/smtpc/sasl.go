package smtpc

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"strings"

	"github.com/emersion/go-sasl"
)

// LoginClient is the LOGIN mechanism (draft-murchison-sasl-login). go-sasl
// has one, but it sends the user name as an initial response and insists
// on the exact challenge "Password:"; servers vary ("Username:",
// "password:", localized prompts), so this one answers by position: the
// first challenge gets the user name, the next the password.
func LoginClient(username, password string) sasl.Client {
	return &loginClient{user: username, pass: password}
}

type loginClient struct {
	user, pass string
	step       int
}

func (a *loginClient) Start() (string, []byte, error) { return "LOGIN", nil, nil }

func (a *loginClient) Next(challenge []byte) ([]byte, error) {
	a.step++
	switch {
	case a.step == 1 && !strings.HasPrefix(strings.ToLower(string(challenge)), "pass"):
		return []byte(a.user), nil
	case a.step <= 2:
		a.step = 2
		return []byte(a.pass), nil
	}
	return nil, sasl.ErrUnexpectedServerChallenge
}

// CramMD5Client is CRAM-MD5 (RFC 2195): the password never crosses the
// wire, which is why a smarthost without TLS may still get it.
func CramMD5Client(username, password string) sasl.Client {
	return &cramClient{user: username, pass: password}
}

type cramClient struct {
	user, pass string
	done       bool
}

func (a *cramClient) Start() (string, []byte, error) { return "CRAM-MD5", nil, nil }

func (a *cramClient) Next(challenge []byte) ([]byte, error) {
	if a.done {
		return nil, sasl.ErrUnexpectedServerChallenge
	}
	a.done = true
	mac := hmac.New(md5.New, []byte(a.pass))
	mac.Write(challenge)
	return []byte(a.user + " " + hex.EncodeToString(mac.Sum(nil))), nil
}
