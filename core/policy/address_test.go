package policy

import (
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	cases := []struct {
		in   string
		want Address
		err  bool
	}{
		{"", Address{}, false},
		{"<>", Address{}, false},
		{"u@example.test", Address{Local: "u", Domain: "example.test"}, false},
		{"<u@example.test>", Address{Local: "u", Domain: "example.test"}, false},
		{"U.Ser+tag@EXAMPLE.Test", Address{Local: "U.Ser+tag", Domain: "example.test"}, false},
		{"u@[192.0.2.1]", Address{Local: "u", Domain: "[192.0.2.1]", Literal: true}, false},
		{"u@[IPv6:2001:DB8::1]", Address{Local: "u", Domain: "[ipv6:2001:db8::1]", Literal: true}, false},
		{"@r.test:u@v.test", Address{Local: "u", Domain: "v.test"}, false},
		{"@a.test,@b.test:u@v.test", Address{Local: "u", Domain: "v.test"}, false},
		// go-smtp unquotes: `"u@v"@r` arrives as u@v@r; the last @ wins.
		{"u@v.test@r.test", Address{Local: "u@v.test", Domain: "r.test"}, false},
		{"a b@example.test", Address{Local: "a b", Domain: "example.test"}, false},
		{"u%v.test@r.test", Address{Local: "u%v.test", Domain: "r.test"}, false},
		{"v!u@r.test", Address{Local: "v!u", Domain: "r.test"}, false},
		{"ユーザ@example.test", Address{Local: "ユーザ", Domain: "example.test"}, false},
		{"u@bücher.example", Address{Local: "u", Domain: "xn--bcher-kva.example"}, false},
		{"u", Address{}, true},
		{"v!u", Address{}, true},
		{"u@", Address{}, true},
		{"@example.test", Address{}, true},
		{"u@v.test.", Address{}, true},
		{"u@.v.test", Address{}, true},
		{"u@v..test", Address{}, true},
		{"u@-v.test", Address{}, true},
		{"u@\xffvictim.example", Address{}, true},
		{"u@b\xfccher.example", Address{}, true}, // Latin-1, not UTF-8
		{"u@v_x.test", Address{}, true},
		{`"u@v"`, Address{}, true},
		{"u@[192.0.2.1", Address{}, true},
		{"u@[300.0.2.1]", Address{}, true},
		{"u@[2001:db8::1]", Address{}, true},
		{"u@[IPv6:192.0.2.1]", Address{}, true},
		{"u@[x:y]", Address{}, true},
		{"@r.test", Address{}, true},
		{"@r.test.:u@v.test", Address{}, true},
		{"r.test:u@v.test", Address{Local: "r.test:u", Domain: "v.test"}, false}, // was quoted
		{"u\x00@v.test", Address{}, true},
		{"u\r\n@v.test", Address{}, true},
		{"\xff@v.test", Address{}, true},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@v.test", Address{}, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParsePath(c.in)
			if (err != nil) != c.err || got != c.want {
				t.Errorf("ParsePath(%q) = %+v, %v; want %+v, err=%v", c.in, got, err, c.want, c.err)
			}
		})
	}
}

func TestAddressString(t *testing.T) {
	for in, want := range map[string]string{
		"u@x.test":             "u@x.test",
		"a b@x.test":           `"a b"@x.test`,
		"u@v.test@x.test":      `"u@v.test"@x.test`,
		`a"b\c@x.test`:         `"a\"b\\c"@x.test`,
		".u@x.test":            `".u"@x.test`,
		"u@[IPv6:2001:db8::1]": "u@[ipv6:2001:db8::1]",
		"":                     "",
	} {
		a, err := ParsePath(in)
		if err != nil {
			t.Fatalf("ParsePath(%q): %v", in, err)
		}
		if got := a.String(); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPathLimits: RFC 5321 4.5.3.1's limits hold for the address as it is
// sent on, the local part's quotes and the path's brackets included.
func TestPathLimits(t *testing.T) {
	// domain builds a valid domain of n octets.
	domain := func(n int) string {
		var labels []string
		for n > 0 {
			l := min(n, 63)
			if n-l == 1 { // no one-octet tail after a dot
				l--
			}
			labels = append(labels, strings.Repeat("d", l))
			n -= l + 1
		}
		return strings.Join(labels, ".")
	}
	for _, c := range []struct {
		in string
		ok bool
	}{
		{strings.Repeat("a", 64) + "@v.test", true},
		{strings.Repeat("a", 61) + " @v.test", true}, // "…" is 64 octets
		{strings.Repeat("a", 62) + " @v.test", false},
		{strings.Repeat("a", 63) + " @v.test", false},
		{strings.Repeat("a", 64) + "@" + domain(189), true},   // <…> 256 octets
		{strings.Repeat("a", 64) + "@" + domain(190), false},  // 257
		{strings.Repeat("a", 61) + " @" + domain(190), false}, // 253 unquoted, <"…"> 257
	} {
		_, err := ParsePath(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParsePath(%d octets, local %q…): err %v, want ok=%v", len(c.in), c.in[:3], err, c.ok)
		}
	}
}
