package dkimsign

import (
	"io"
	"strings"
	"testing"
)

// BenchmarkSign is the cost of signing a 100 KiB message at delivery,
// beside the baseline of streaming it unsigned through Sign (header read,
// no key for its From domain), in the same run. The reader hides
// strings.Reader's WriteTo and Seek, as the spool's reader does: the
// message is spilled, not read twice.
func BenchmarkSign(b *testing.B) {
	rk, ek := testKeys(b)
	msg := testMsg + strings.Repeat("The quick brown fox jumps over the lazy dog, 0123456789.\r\n", 100<<10/58)
	cases := []struct {
		name string
		s    *Signer
	}{
		{"baseline-unsigned", New([]*Key{{Domain: "other.test", Selector: "e", Signer: ek}})},
		{"rsa2048", New([]*Key{{Domain: "example.test", Selector: "r", Signer: rk}})},
		{"ed25519", New([]*Key{{Domain: "example.test", Selector: "e", Signer: ek}})},
		{"rsa2048+ed25519", New([]*Key{{Domain: "example.test", Selector: "r", Signer: rk}, {Domain: "example.test", Selector: "e", Signer: ek}})},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				r, err := c.s.Sign(trusted, struct{ io.Reader }{strings.NewReader(msg)})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
