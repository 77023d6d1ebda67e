// Package auth is the SMTP AUTH back end (RFC 4954): the users file,
// SASL server mechanisms PLAIN (RFC 4616), LOGIN
// (draft-murchison-sasl-login) and CRAM-MD5 (RFC 2195), and the per-IP
// lockout that makes password guessing pointless.
package auth

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis-mta/portcullis/core/watchfile"
)

// Users is an htpasswd-style users file, re-read when it changes. Lines:
//
//	name:$2y$05$...       bcrypt, as `htpasswd -nbB name password` prints ($2a$, $2b$ too)
//	name:{plain}secret    the secret itself: plaintext-equivalent, only for a
//	                      user who needs CRAM-MD5 (which needs the secret)
//	# comment
//
// Other htpasswd formats (MD5 $apr1$, {SHA}, crypt) are refused at load:
// they are weak. Names are case-sensitive. Safe for concurrent use.
type Users struct {
	file *watchfile.File[userSet]
}

type userEntry struct {
	hash  []byte // bcrypt; nil for {plain}
	plain string
}

type userSet struct {
	users map[string]userEntry
	dummy []byte // bcrypt hash of a random password, at the file's highest cost
	plain bool   // some user has a {plain} secret: CRAM-MD5 is offered
}

// LoadUsers reads the users file at path.
func LoadUsers(path string) (*Users, error) {
	f, err := watchfile.Load(path, "users file", readUsers,
		func(s *userSet) []any { return []any{"users", len(s.users)} })
	if err != nil {
		return nil, err
	}
	return &Users{file: f}, nil
}

// SetLogger sets where reloads are logged (default: nowhere).
func (u *Users) SetLogger(l *slog.Logger) { u.file.SetLogger(l) }

func readUsers(path string) (*userSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	set := &userSet{users: map[string]userEntry{}}
	cost := bcrypt.MinCost
	// A UTF-8 byte order mark, as some editors write, is not part of the
	// first name.
	sc := bufio.NewScanner(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
	var bad []error // every bad line, each "file:line:1: message"
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, secret, ok := strings.Cut(line, ":")
		e, c, err := parseEntry(name, secret, ok)
		if err != nil {
			bad = append(bad, fmt.Errorf("%s:%d:1: %v", path, n, err))
			continue
		}
		if _, dup := set.users[name]; dup {
			bad = append(bad, fmt.Errorf("%s:%d:1: user %q listed twice", path, n, name))
			continue
		}
		set.users[name] = e
		cost = max(cost, c)
		set.plain = set.plain || e.hash == nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(bad) > 0 {
		return nil, errors.Join(bad...)
	}
	set.dummy, err = bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
	return set, err
}

func parseEntry(name, secret string, ok bool) (userEntry, int, error) {
	if !ok || name == "" || strings.ContainsFunc(name, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
		return userEntry{}, 0, fmt.Errorf("want name:hash")
	}
	if p, ok := strings.CutPrefix(secret, "{plain}"); ok {
		if p == "" {
			return userEntry{}, 0, fmt.Errorf("user %q: empty {plain} secret", name)
		}
		return userEntry{plain: p}, 0, nil
	}
	cost, err := bcrypt.Cost([]byte(secret))
	if err != nil || !wellFormedBcrypt(secret) {
		return userEntry{}, 0, fmt.Errorf("user %q: not a bcrypt hash (make one with htpasswd -nbB) or {plain}secret", name)
	}
	return userEntry{hash: []byte(secret)}, cost, nil
}

// wellFormedBcrypt checks the whole modular crypt string: "$2a$", "$2b$"
// or "$2y$", two cost digits, "$", then 53 characters of bcrypt's base64
// (22 salt, 31 hash). bcrypt.Cost reads only the head, so a hash damaged
// by a copy and paste (one character short or long) loaded, and its user
// could never log in, with nothing in the log to say why.
func wellFormedBcrypt(h string) bool {
	if len(h) != 60 || h[0] != '$' || h[1] != '2' || !strings.ContainsRune("aby", rune(h[2])) ||
		h[3] != '$' || h[6] != '$' {
		return false
	}
	for i := 7; i < len(h); i++ {
		c := h[i]
		if !(c == '.' || c == '/' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Verify reports whether pass is user's password. Unknown users and
// {plain} users cost a bcrypt comparison too, so that response time does
// not tell which names exist.
func (u *Users) Verify(user, pass string) bool {
	set := u.current()
	e, ok := set.users[user]
	if !ok || e.hash == nil {
		_ = bcrypt.CompareHashAndPassword(set.dummy, []byte(pass))
		return ok && subtle.ConstantTimeCompare([]byte(e.plain), []byte(pass)) == 1
	}
	return bcrypt.CompareHashAndPassword(e.hash, []byte(pass)) == nil
}

// Secret returns user's {plain} secret, for CRAM-MD5; false for unknown
// users and bcrypt users.
func (u *Users) Secret(user string) (string, bool) {
	e, ok := u.current().users[user]
	return e.plain, ok && e.hash == nil
}

// current returns the loaded users, re-read when the file changed (see
// package watchfile).
func (u *Users) current() *userSet { return u.file.Get() }
