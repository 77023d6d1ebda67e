package auth

import "testing"

// BenchmarkVerify shows there is no timing oracle: an unknown user and a
// {plain} user cost about what a known bcrypt user does (the baseline,
// alice at cost 5).
func BenchmarkVerify(b *testing.B) {
	u, err := LoadUsers("testdata/htpasswd")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, user, pass string }{
		{"baseline-known-bcrypt-user", "alice", "wrong"},
		{"unknown-user", "mallory", "wrong"},
		{"plain-user", "carol", "wrong"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if u.Verify(c.user, c.pass) {
					b.Fatal("accepted")
				}
			}
		})
	}
}
