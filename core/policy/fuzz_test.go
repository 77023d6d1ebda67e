package policy

import (
	"os"
	"path/filepath"
	"strconv"
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

// FuzzORCPT: an RCPT's ORCPT value (client bytes) rewritten by UTF8ORCPT
// comes out as RFC 6533 utf-8-addr-xtext, printable ASCII without '+' or
// '=', that decodes back to the address the rfc822 xtext held; and
// ORCPTParam's output for any stored form is printable ASCII.
func FuzzORCPT(f *testing.F) {
	for _, s := range []string{
		"rfc822;b+C3+B8b@example.test", "rfc822;+E6+97+A5+2B@x", "rfc822;bob@x", "rfc822;b+FF@x",
		"RFC822;a+C3", "utf-8;b\\x{F8}b@x", "rfc822;a+5C+3D+2B+C3+A9@x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if out, ok := ORCPTParam(v); ok && !printableASCII(out) {
			t.Fatalf("ORCPTParam(%q) = %q: not printable ASCII", v, out)
		}
		out, ok := UTF8ORCPT(v)
		if !ok {
			return
		}
		enc, found := strings.CutPrefix(out, "utf-8;")
		if !found || !printableASCII(enc) || strings.ContainsAny(enc, "+=") {
			t.Fatalf("UTF8ORCPT(%q) = %q: not utf-8-addr-xtext", v, out)
		}
		_, xt, _ := strings.Cut(v, ";")
		want, _ := decodeXtext(xt)
		if got := decodeUTF8AddrXtext(t, enc); got != want {
			t.Fatalf("UTF8ORCPT(%q) = %q, which decodes to %q, want %q", v, out, got, want)
		}
	})
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// decodeUTF8AddrXtext undoes utf8AddrXtext: each \x{HEX} is that code point.
func decodeUTF8AddrXtext(t *testing.T, s string) string {
	var b strings.Builder
	for s != "" {
		rest, ok := strings.CutPrefix(s, `\x{`)
		if !ok {
			b.WriteByte(s[0])
			s = s[1:]
			continue
		}
		hex, after, ok := strings.Cut(rest, "}")
		if !ok {
			t.Fatalf("unterminated \\x{ in %q", s)
		}
		n, err := strconv.ParseUint(hex, 16, 32)
		if err != nil {
			t.Fatalf("bad hexpoint %q", hex)
		}
		b.WriteRune(rune(n))
		s = after
	}
	return b.String()
}
