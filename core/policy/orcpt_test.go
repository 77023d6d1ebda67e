package policy

import "testing"

func TestXtext(t *testing.T) {
	if got := Xtext("a+b=c d\xe9"); got != "a+2Bb+3Dc+20d+E9" {
		t.Errorf("got %q", got)
	}
}

// TestORCPTParam: what goes on the wire for an original recipient as the
// queue keeps it.
func TestORCPTParam(t *testing.T) {
	for _, tc := range []struct{ stored, want string }{
		{"rfc822;X+1=y@d.test", "rfc822;X+2B1+3Dy@d.test"},
		{"utf-8;bob@d.test", "utf-8;bob@d.test"},
		// RFC 6533 3: QCHAR excludes '\', '+' and '='; HEXPOINT has two
		// digits below U+0100 and no leading zero above.
		{"utf-8;b\u00f8b+1=\\x@d.test", `utf-8;b\x{F8}b\x{2B}1\x{3D}\x{5C}x@d.test`},
		{"utf-8;\u65e5\U0001F600@d.test", `utf-8;\x{65E5}\x{1F600}@d.test`},
		{"utf-8;a\tb@d.test", `utf-8;a\x{09}b@d.test`},
		// An rfc822 address beyond ASCII (Postfix's form) goes on as utf-8.
		{"rfc822;b\u00f8b@d.test", `utf-8;b\x{F8}b@d.test`},
	} {
		got, ok := ORCPTParam(tc.stored)
		if !ok || got != tc.want {
			t.Errorf("ORCPTParam(%q) = %q, %v; want %q", tc.stored, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"", "rfc822", "rfc822;", "utf-8;b\xffb@d.test", "x400;c=us", " rfc822;a@b"} {
		if got, ok := ORCPTParam(bad); ok {
			t.Errorf("ORCPTParam(%q) = %q, want none", bad, got)
		}
	}
}

// TestUTF8ORCPT: the rfc822 xtext of UTF-8 bytes (what Postfix sends for
// a recipient of SMTPUTF8 mail) becomes the utf-8 type; anything else is
// left as it is.
func TestUTF8ORCPT(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rfc822;b+C3+B8b@example.test", `utf-8;b\x{F8}b@example.test`},
		{"RFC822;+E6+97+A5+2B@example.test", `utf-8;\x{65E5}\x{2B}@example.test`},
	} {
		if got, ok := UTF8ORCPT(tc.in); !ok || got != tc.want {
			t.Errorf("UTF8ORCPT(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	for _, keep := range []string{
		"rfc822;bob+2B1@example.test",  // ASCII: go-smtp's to decode
		"rfc822;b+FFb@example.test",    // not UTF-8
		"rfc822;b+C3b@example.test",    // cut short
		"rfc822;b+c3+b8b@example.test", // xtext hex is upper case
		"utf-8;b\\x{F8}b@example.test",
		"x400;whatever",
		"rfc822",
	} {
		if got, ok := UTF8ORCPT(keep); ok {
			t.Errorf("UTF8ORCPT(%q) = %q, want it left alone", keep, got)
		}
	}
}
