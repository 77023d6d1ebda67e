// Package dkimsign adds DKIM signatures (RFC 6376; Ed25519 per RFC 8463)
// to outgoing mail at delivery, over the final bytes that go on the wire,
// so that mail our users send through a smarthost (OB25) passes DMARC at
// its receivers (RFC 7489 3.1.1: the signing domain aligns with From).
//
// A message is signed when it came from a trusted network or an
// authenticated client, or is our own delivery status notification, and
// its From domain (or a parent of it: relaxed alignment) has keys in
// dkim.sign. Every key of that domain signs, so an RSA and an Ed25519 key
// side by side give two signatures, as RFC 8463 3 suggests.
//
// The body hash needs the whole message before the signature can go out
// on top, so the message is read once through the signer; a seekable
// message is then rewound and streamed again, anything else is kept in
// memory up to MemLimit bytes and in an unlinked temporary file past
// that, never whole in memory.
package dkimsign

import (
	"crypto"
	"fmt"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
	"golang.org/x/net/idna"

	"github.com/portcullis-mta/portcullis/core/config"
)

// DefaultHeaders are the fields signed when a key names none: RFC 6376
// 5.4.1's list, plus Sender. The fields a reader is shown and trusts are
// listed twice (over-signing, RFC 6376 5.4.2 and 8.15): a verifier hashes
// the bottom instance first, so with one listing a second Subject added
// on top would be displayed and the signature still verify; with two, the
// extra name stands for the absent second instance, and adding one breaks
// the signature. A name listed once already breaks it when that field,
// absent at signing, is added. Received and Return-Path, which relays
// add on the way, are never signed (5.4.1).
var DefaultHeaders = []string{
	"From", "From", "Sender", "Sender", "Reply-To", "Reply-To", "Subject", "Subject", "Date",
	"To", "To", "Cc", "Cc", "Resent-Date", "Resent-From",
	"Resent-To", "Resent-Cc", "In-Reply-To", "References", "List-Id", "List-Help",
	"List-Unsubscribe", "List-Subscribe", "List-Post", "List-Owner", "List-Archive",
	"Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
}

// MemLimit is how much of a message is held in memory while it is signed;
// past it the message is spilled to a temporary file.
const MemLimit = 1 << 20

// Key is one signing key.
type Key struct {
	Domain   string // d=, lower case
	Selector string // s=
	Signer   crypto.Signer
	Headers  []string // h=; DefaultHeaders when empty
}

// Signer signs outgoing messages; it satisfies core/delivery's Signer.
// It is immutable: a config reload builds a new one.
type Signer struct {
	keys    map[string][]*Key // by domain
	tempDir string            // "" is os.TempDir()
}

// New returns a Signer for keys.
func New(keys []*Key) *Signer {
	s := &Signer{keys: map[string][]*Key{}}
	for _, k := range keys {
		d := strings.ToLower(strings.TrimSuffix(k.Domain, "."))
		s.keys[d] = append(s.keys[d], k)
	}
	return s
}

// FromConfig loads the keys of dkim.sign (paths already resolved by
// KeyError is a dkim.sign entry that cannot sign: its key does not load
// (missing, unparsable, too small, readable by others) or go-msgauth
// refuses its options.
type KeyError struct {
	Index int // in dkim.sign
	Err   error
}

func (e *KeyError) Error() string { return fmt.Sprintf("dkim.sign[%d]: %v", e.Index, e.Err) }
func (e *KeyError) Unwrap() error { return e.Err }

// config.Load). A key that cannot be loaded refuses the config.
func FromConfig(c config.DKIM) (*Signer, error) {
	var keys []*Key
	for i, k := range c.Sign {
		sg, err := LoadKey(k.Key)
		if err != nil {
			return nil, &KeyError{Index: i, Err: err}
		}
		key := &Key{Domain: k.Domain, Selector: k.Selector, Signer: sg, Headers: k.Headers}
		// Options go-msgauth refuses (a header list without From) would
		// fail every delivery later: refuse them now.
		probe, err := dkim.NewSigner(key.options())
		if err != nil {
			return nil, &KeyError{Index: i, Err: err}
		}
		_ = probe.Close() // nothing was written: its error says so
		keys = append(keys, key)
	}
	return New(keys), nil
}

// keysFor returns the keys for domain or its nearest parent that has some.
// A domain in Unicode (an SMTPUTF8 From) is matched in its A-label form,
// the form keys are configured in.
func (s *Signer) keysFor(domain string) []*Key {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if a, err := idna.Lookup.ToASCII(domain); err == nil {
		domain = a
	}
	for domain != "" {
		if ks := s.keys[domain]; len(ks) > 0 {
			return ks
		}
		_, rest, ok := strings.Cut(domain, ".")
		if !ok || !strings.Contains(rest, ".") {
			return nil // never a bare top-level domain
		}
		domain = rest
	}
	return nil
}

func (k *Key) options() *dkim.SignOptions {
	h := k.Headers
	if len(h) == 0 {
		h = DefaultHeaders
	}
	return &dkim.SignOptions{
		Domain: k.Domain, Selector: k.Selector, Signer: k.Signer,
		// relaxed/relaxed survives the re-folding and whitespace changes
		// of relays on the way (RFC 6376 3.4).
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             h,
	}
}
