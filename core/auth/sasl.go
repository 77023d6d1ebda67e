package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/portcullis-mta/portcullis/core/smtperr"
)

// Mechanism names as advertised in EHLO.
const (
	Plain   = sasl.Plain
	Login   = sasl.Login
	CramMD5 = "CRAM-MD5"
)

// Replies of RFC 4954 6. The SASL servers return these (never plain Go
// errors), so the SMTP layer can turn them into replies as they are.
var (
	ErrInvalidCredentials = smtperr.New(535, "5.7.8", "Authentication credentials invalid")
	ErrMalformed          = smtperr.New(501, "5.5.2", "Cannot decode response")
	ErrUnknownMechanism   = smtperr.New(504, "5.5.4", "Unrecognized authentication type")
	ErrLockedOut          = smtperr.New(454, "4.7.0", "Too many failed authentications, try again later")
)

// Mechanisms returns the mechanisms to advertise: PLAIN and LOGIN, and
// CRAM-MD5 only when some user has a {plain} secret (it needs one).
func (u *Users) Mechanisms() []string {
	m := []string{Plain, Login}
	if u.current().plain {
		m = append(m, CramMD5)
	}
	return m
}

// NewServer returns a SASL server for mech (case-insensitive) that checks
// credentials against u. It fits go-smtp's AuthSession.Auth. done, if not
// nil, is called exactly once when the exchange ends: with the user name
// and nil on success, or with the name the client claimed (possibly "")
// and the error on failure; the caller logs it and feeds its Lockout.
// Errors from Next are *smtperr.Error (ErrInvalidCredentials, ErrMalformed).
// hostname goes into the CRAM-MD5 challenge.
func (u *Users) NewServer(mech, hostname string, done func(user string, err error)) (sasl.Server, error) {
	if done == nil {
		done = func(string, error) {}
	}
	f := &finisher{done: done}
	switch strings.ToUpper(mech) {
	case Plain:
		return &plainServer{users: u, f: f}, nil
	case Login:
		return &loginServer{users: u, f: f}, nil
	case CramMD5:
		return u.newCramServer(hostname, f)
	}
	return nil, ErrUnknownMechanism
}

// finisher calls done once, and makes a finished exchange refuse more input.
type finisher struct {
	done     func(user string, err error)
	finished bool
}

func (f *finisher) finish(user string, err error) error {
	if !f.finished {
		f.finished = true
		f.done(user, err)
	}
	return err
}

// plainServer is PLAIN (RFC 4616): one message, authzid NUL authcid NUL
// passwd. Ours rather than go-sasl's so that a malformed message, too,
// ends through the finisher (done is called) with ErrMalformed.
type plainServer struct {
	users *Users
	f     *finisher
}

func (s *plainServer) Next(resp []byte) ([]byte, bool, error) {
	switch {
	case s.f.finished:
		return nil, true, sasl.ErrUnexpectedClientResponse
	case resp == nil: // no initial response: RFC 4954 4, an empty challenge
		return []byte{}, false, nil
	}
	parts := bytes.Split(resp, []byte{0})
	if len(parts) != 3 {
		return nil, true, s.f.finish("", ErrMalformed)
	}
	identity, user, pass := string(parts[0]), string(parts[1]), string(parts[2])
	// No proxy authorisation: identity must be empty or the user.
	if (identity != "" && identity != user) || !s.users.Verify(user, pass) {
		return nil, true, s.f.finish(user, ErrInvalidCredentials)
	}
	return nil, true, s.f.finish(user, nil)
}

// loginServer is the LOGIN mechanism: "Username:" then "Password:", each
// answered in base64 (the SMTP layer does the base64). A client may send
// the user name as initial response, as go-sasl's client does.
type loginServer struct {
	users *Users
	f     *finisher
	user  *string
}

var (
	userChallenge = []byte("Username:")
	passChallenge = []byte("Password:")
)

func (s *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch {
	case s.f.finished:
		return nil, true, sasl.ErrUnexpectedClientResponse
	case s.user == nil && resp == nil:
		return userChallenge, false, nil
	case s.user == nil:
		user := string(resp)
		s.user = &user
		return passChallenge, false, nil
	}
	if !s.users.Verify(*s.user, string(resp)) {
		return nil, true, s.f.finish(*s.user, ErrInvalidCredentials)
	}
	return nil, true, s.f.finish(*s.user, nil)
}

// cramServer is CRAM-MD5 (RFC 2195): the client answers the challenge
// with "user hex(HMAC-MD5(secret, challenge))".
type cramServer struct {
	users     *Users
	f         *finisher
	challenge []byte
	sent      bool
}

func (u *Users) newCramServer(hostname string, f *finisher) (sasl.Server, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, smtperr.Wrap(err, 454, "4.7.0", "Temporary authentication failure")
	}
	// RFC 2195 2: a msg-id, "<random.timestamp@hostname>", unique per use.
	c := fmt.Sprintf("<%d.%d@%s>", n, time.Now().Unix(), hostname)
	return &cramServer{users: u, f: f, challenge: []byte(c)}, nil
}

func (s *cramServer) Next(resp []byte) ([]byte, bool, error) {
	switch {
	case s.f.finished:
		return nil, true, sasl.ErrUnexpectedClientResponse
	case !s.sent:
		if len(resp) > 0 { // no initial response in CRAM-MD5
			return nil, true, s.f.finish("", ErrMalformed)
		}
		s.sent = true
		return s.challenge, false, nil
	}
	i := bytes.LastIndexByte(resp, ' ')
	if i <= 0 {
		return nil, true, s.f.finish("", ErrMalformed)
	}
	user, digest := string(resp[:i]), resp[i+1:]
	got := make([]byte, hex.DecodedLen(len(digest)))
	if _, err := hex.Decode(got, digest); err != nil || len(got) != md5.Size {
		return nil, true, s.f.finish(user, ErrMalformed)
	}
	secret, ok := s.users.Secret(user)
	mac := hmac.New(md5.New, []byte(secret))
	mac.Write(s.challenge)
	if !hmac.Equal(mac.Sum(nil), got) || !ok {
		return nil, true, s.f.finish(user, ErrInvalidCredentials)
	}
	return nil, true, s.f.finish(user, nil)
}
