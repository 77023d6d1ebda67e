package policy

import (
	"net/mail"
	"testing"
)

// BenchmarkParsePath compares the strict parser with the standard
// library's net/mail address parser on the same input (the baseline).
func BenchmarkParsePath(b *testing.B) {
	const addr = "first.last+tag@mail.example.test"
	b.Run("baseline-net-mail", func(b *testing.B) {
		for b.Loop() {
			if _, err := mail.ParseAddress(addr); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ParsePath", func(b *testing.B) {
		for b.Loop() {
			if _, err := ParsePath(addr); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCheckRcpt is the per-RCPT cost: a local recipient, and a
// refused relay attempt (which builds an error).
func BenchmarkCheckRcpt(b *testing.B) {
	p := testPolicy(b, "")
	b.Run("baseline-net-mail", func(b *testing.B) {
		for b.Loop() {
			mail.ParseAddress("u@example.test")
		}
	})
	b.Run("local", func(b *testing.B) {
		for b.Loop() {
			if p.CheckRcpt(untrusted, "f@victim.example", "u@example.test") != nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("relay-denied", func(b *testing.B) {
		for b.Loop() {
			if p.CheckRcpt(untrusted, "f@victim.example", "u@victim.example") == nil {
				b.Fatal("relayed")
			}
		}
	})
}
