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
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// recheckEvery bounds how often the users file is stat'ed for changes.
const recheckEvery = time.Second

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
	path string
	log  *slog.Logger
	now  func() time.Time

	set atomic.Pointer[userSet]

	mu        sync.Mutex // serialises reloads
	checked   time.Time
	modTime   time.Time
	size      int64
	lastError string
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
	u := &Users{path: path, log: slog.New(slog.DiscardHandler), now: time.Now}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	set, err := readUsers(path)
	if err != nil {
		return nil, err
	}
	u.set.Store(set)
	u.checked, u.modTime, u.size = u.now(), st.ModTime(), st.Size()
	return u, nil
}

// SetLogger sets where reloads are logged (default: nowhere).
func (u *Users) SetLogger(l *slog.Logger) { u.log = l }

func readUsers(path string) (*userSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	set := &userSet{users: map[string]userEntry{}}
	cost := bcrypt.MinCost
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, secret, ok := strings.Cut(line, ":")
		e, c, err := parseEntry(name, secret, ok)
		if err != nil {
			return nil, fmt.Errorf("%s:%d:1: %v", path, n, err)
		}
		if _, dup := set.users[name]; dup {
			return nil, fmt.Errorf("%s:%d:1: user %q listed twice", path, n, name)
		}
		set.users[name] = e
		cost = max(cost, c)
		set.plain = set.plain || e.hash == nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
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
	if err != nil || !strings.HasPrefix(secret, "$2") {
		return userEntry{}, 0, fmt.Errorf("user %q: not a bcrypt hash (make one with htpasswd -nbB) or {plain}secret", name)
	}
	return userEntry{hash: []byte(secret)}, cost, nil
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

// current returns the loaded users, re-reading the file first when its
// mtime or size changed (checked at most once per recheckEvery). A failed
// reload keeps the old users and is logged once.
func (u *Users) current() *userSet {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.now()
	if now.Sub(u.checked) < recheckEvery && !now.Before(u.checked) {
		return u.set.Load()
	}
	u.checked = now
	st, err := os.Stat(u.path)
	if err == nil && st.ModTime().Equal(u.modTime) && st.Size() == u.size {
		return u.set.Load()
	}
	var set *userSet
	if err == nil {
		set, err = readUsers(u.path)
	}
	if err != nil {
		if msg := err.Error(); msg != u.lastError {
			u.log.Error("users file reload failed, keeping the old users", "path", u.path, "err", err)
			u.lastError = msg
		}
		return u.set.Load()
	}
	u.set.Store(set)
	u.modTime, u.size, u.lastError = st.ModTime(), st.Size(), ""
	u.log.Info("users file reloaded", "path", u.path, "users", len(set.users))
	return set
}
