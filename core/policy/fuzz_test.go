package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/config"
)

// FuzzParsePath: the parser must not panic, and what it accepts must be
// stable (parsing its own output gives the same Address) and well-formed.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"u@example.test", "@r.test:u@v.test", "u%v@r.test", "v!u@r.test", "u@v@r", "u@v.",
		"u@[192.0.2.1]", "u@[IPv6:::1]", "a b@x.test", "ユーザ@bücher.example", "<>", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParsePath(s)
		if err != nil || a.IsNull() {
			return
		}
		if a.Domain != strings.ToLower(a.Domain) || a.Local == "" || len(a.Local) > maxLocal {
			t.Fatalf("ParsePath(%q) = %+v: not normalised", s, a)
		}
		if !a.Literal && !config.ValidDomain(a.Domain) {
			t.Fatalf("ParsePath(%q) = %+v: invalid domain accepted", s, a)
		}
		if a.Literal && !a.IP().IsValid() {
			t.Fatalf("ParsePath(%q) = %+v: literal without address", s, a)
		}
		b, err := ParsePath(a.Local + "@" + a.Domain)
		if err != nil || b != a {
			t.Fatalf("ParsePath(%q) = %+v, but its own form gives %+v, %v", s, a, b, err)
		}
	})
}

// FuzzRecipientsFile: any file content either loads or fails with a
// file:line error; what loads answers lookups without panicking.
func FuzzRecipientsFile(f *testing.F) {
	f.Add("# list\nalice@example.test\n@sub.example.test\n")
	f.Add("bad line\n")
	f.Add("\"q\"@example.test\nu@[192.0.2.1]\n")
	f.Fuzz(func(t *testing.T, content string) {
		p := filepath.Join(t.TempDir(), "r")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		set, err := readRecipients(p)
		if err != nil {
			if !strings.HasPrefix(err.Error(), p+":") {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		for a := range set.addrs {
			if a != strings.ToLower(a) {
				t.Fatalf("key %q not lower-cased", a)
			}
		}
	})
}
