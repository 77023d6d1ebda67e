package dkimsign

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// RSABits is the size of generated RSA keys: RFC 8301 3.2 asks for at
// least 2048 bits from signers.
const RSABits = 2048

// maxKeyFile bounds what is read of a key file: an RSA 8192 PEM is under
// 7 KiB, so anything much larger is not a key.
const maxKeyFile = 64 << 10

// minRSABits is the smallest RSA key loaded; verifiers ignore smaller ones
// (RFC 8301 3.2).
const minRSABits = 1024

// GenerateKey makes a new signing key of kind "rsa" (2048 bits) or
// "ed25519" (RFC 8463).
func GenerateKey(kind string) (crypto.Signer, error) {
	switch kind {
	case "rsa":
		return rsa.GenerateKey(rand.Reader, RSABits)
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("dkimsign: unknown key type %q (want rsa or ed25519)", kind)
}

// MarshalKey encodes key as a PKCS #8 "PRIVATE KEY" PEM block.
func MarshalKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("dkimsign: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey reads a PEM private key: PKCS #8 (RSA or Ed25519) or PKCS #1
// "RSA PRIVATE KEY", as openssl and opendkim-genkey write them.
func ParseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("dkimsign: no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("dkimsign: unexpected PEM block %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("dkimsign: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("dkimsign: RSA key of %d bits is too small (RFC 8301: at least %d)", k.N.BitLen(), minRSABits)
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("dkimsign: unsupported key type %T", key)
}

// LoadKey reads the PEM private key in file path. A key that every local
// user may read, or that others than its owner may replace, is refused,
// as opendkim's RequireSafeKeys does: with it anyone on the host could
// sign as the domain. The owner's group may read it (0640), so that a
// key kept by root can be read by the daemon's group.
func LoadKey(path string) (crypto.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if m := st.Mode().Perm(); m&0o027 != 0 {
		return nil, fmt.Errorf("%s: unsafe key file: mode %04o lets other users read or replace it; chmod 600 %s (or 640 with the daemon's group)", path, m, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// RecordValue is the key record's TXT value (RFC 6376 3.6.1): for RSA the
// DER SubjectPublicKeyInfo, for Ed25519 the raw 32-byte key (RFC 8463 4.2).
func RecordValue(pub crypto.PublicKey) (string, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(p), nil
	}
	return "", fmt.Errorf("dkimsign: unsupported public key %T", pub)
}

// Record is the zone-file line to publish: the TXT value at
// SELECTOR._domainkey.DOMAIN, split into strings of at most 255 bytes
// (RFC 1035 3.3.14; RFC 6376 3.6.2.2 joins them).
func Record(domain, selector string, pub crypto.PublicKey) (string, error) {
	v, err := RecordValue(pub)
	if err != nil {
		return "", err
	}
	var parts []string
	for len(v) > 255 {
		parts = append(parts, `"`+v[:255]+`"`)
		v = v[255:]
	}
	parts = append(parts, `"`+v+`"`)
	name := selector + "._domainkey." + strings.TrimSuffix(domain, ".") + "."
	return name + " IN TXT " + strings.Join(parts, " "), nil
}
