package dkimsign

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// A header over 1 MiB cannot be signed, but the message was accepted and
// must go out: as it is, with ErrHeaderTooLarge for the log when it may be
// ours to sign, silently when its From domain has no key (it used to fail
// every delivery with "header too large" until max_age bounced it).
func TestSignHeaderTooLarge(t *testing.T) {
	_, ek := testKeys(t)
	s := New([]*Key{{Domain: "example.test", Selector: "e", Signer: ek}})
	s.tempDir = t.TempDir()
	var to strings.Builder
	to.WriteString("To: ")
	for range 40000 {
		to.WriteString("<userxxxxxxxxxx@dest.test>,\r\n ")
	}
	to.WriteString("<last@dest.test>\r\n")
	tests := []struct {
		name, msg string
		want      error
	}{
		{"From without a key", "From: <joe@other.test>\r\n" + to.String() + "Subject: big\r\n\r\nHello.\r\n", nil},
		{"From with a key", "From: <taro@example.test>\r\n" + to.String() + "Subject: big\r\n\r\nHello.\r\n", ErrHeaderTooLarge},
		{"From past the first MiB", to.String() + "From: <taro@example.test>\r\n\r\nHello.\r\n", ErrHeaderTooLarge},
		{"no empty line, a script's log", "From: <taro@example.test>\r\nSubject: log\r\n" +
			strings.Repeat("2026-11-28 03:00:00 some log line here\r\n", 60000), ErrHeaderTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.Sign(trusted, struct{ io.Reader }{strings.NewReader(tc.msg)})
			if !errors.Is(err, tc.want) || r == nil {
				t.Fatalf("Sign: reader %v, error %v; want a reader and %v", r != nil, err, tc.want)
			}
			out, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.msg {
				t.Errorf("the message changed (%d bytes, was %d)", len(out), len(tc.msg))
			}
		})
	}
}
