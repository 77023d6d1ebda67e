package auth

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/portcullis-mta/portcullis/core/smtperr"
)

// FuzzSASL feeds client bytes to each mechanism: no panic, exactly one
// done call once finished, and only *smtperr.Error (or go-sasl's
// unexpected-response error, which SMTPError maps) as failures.
func FuzzSASL(f *testing.F) {
	f.Add(0, []byte("\x00alice\x00correct horse"), []byte(""))
	f.Add(1, []byte("alice"), []byte("correct horse"))
	f.Add(2, []byte(""), []byte("carol 0123456789abcdef0123456789abcdef"))
	f.Add(2, []byte(""), []byte("carol"))
	u, err := LoadUsers("testdata/htpasswd")
	if err != nil {
		f.Fatal(err)
	}
	mechs := []string{Plain, Login, CramMD5}
	f.Fuzz(func(t *testing.T, m int, first, second []byte) {
		calls := 0
		s, err := u.NewServer(mechs[uint(m)%3], "mx.example.test", func(string, error) { calls++ })
		if err != nil {
			t.Fatal(err)
		}
		if len(first) == 0 {
			first = nil // the corpus cannot say nil: empty stands for "no initial response"
		}
		for _, resp := range [][]byte{first, second, second} {
			_, done, err := s.Next(resp)
			if err != nil {
				var se *smtperr.Error
				if !errors.As(err, &se) && SMTPError(err) == nil {
					t.Fatalf("unmapped error %v", err)
				}
			}
			if done || err != nil {
				break
			}
		}
		if calls > 1 {
			t.Fatalf("done called %d times", calls)
		}
	})
}

// FuzzUsersFile: reading any file content must not panic.
func FuzzUsersFile(f *testing.F) {
	if b, err := os.ReadFile("testdata/htpasswd"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("a:{plain}x\nb:$2y$04$uAo/nRAVZXVmJgUAIvko4.J8t/T88.uOAfbrvBCiaMdRmvpO3ccQO\n"))
	f.Add([]byte("a:$2y$99$x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "u")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		u, err := LoadUsers(p)
		if err == nil {
			u.Verify("a", "x")
			u.Secret("a")
		}
	})
}
