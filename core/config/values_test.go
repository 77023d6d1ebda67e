package config

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"90s", 90 * time.Second, true},
		{"5m", 5 * time.Minute, true},
		{"5d", 120 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"1.5d", 36 * time.Hour, true},
		{"2h30m", 150 * time.Minute, true},
		{"", 0, false},
		{"d", 0, false},
		{"5", 0, false},
		{"-5m", 0, false},
		{"-1d", 0, false},
		{"1d-5m", 0, false},
		{"1d2d", 0, false},
		{"1e3d", 0, false},
		{"5 minutes", 0, false},
		{"99999999999999d", 0, false},
		{"NaNd", 0, false}, // strconv.ParseFloat reads "NaN"; it made a negative duration
		{"infd", 0, false},
		{"0x1p4d", 0, false}, // hex floats are not Go duration syntax
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseDuration(c.in)
			if (err == nil) != c.ok || got != c.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok=%v", c.in, got, err, c.want, c.ok)
			}
		})
	}
}

func TestParsePrefix(t *testing.T) {
	cases := []struct{ in, want string }{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"192.0.2.1", "192.0.2.1/32"},
		{"::1", "::1/128"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:192.0.2.1", "192.0.2.1/32"},
		{"192.168.1.0,255.255.255.0", "192.168.1.0/24"},
		{"192.168.1.7, 255.255.255.252", "192.168.1.4/30"},
		{"10.0.0.0,0.0.0.0", "0.0.0.0/0"},
		{"2001:db8::,32", "2001:db8::/32"},
		{"192.168.1.0,255.0.255.0", "error"},
		{"192.168.1.0,255.255.255.1", "error"},
		{"2001:db8::,255.255.0.0", "error"},
		// A prefix length past the address's bits makes no netip.Prefix
		// (an invalid one, which contains nothing): it must be an error,
		// not an entry silently dropped from relay.networks.
		{"10.0.0.1,32", "10.0.0.1/32"},
		{"10.0.0.1,33", "error"},
		{"2001:db8::,128", "2001:db8::/128"},
		{"2001:db8::,129", "error"},
		{"10.0.0.1,-1", "error"},
		{"10.0.0.0/33", "error"},
		{"fe80::1%eth0", "error"},
		{"example.test", "error"},
		{"", "error"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			p, err := ParsePrefix(c.in)
			got := p.String()
			if err != nil {
				got = "error"
			}
			if got != c.want {
				t.Errorf("ParsePrefix(%q) = %s (%v), want %s", c.in, got, err, c.want)
			}
		})
	}
}

func TestValidDomain(t *testing.T) {
	for in, want := range map[string]bool{
		"example.test": true, "EXAMPLE.test": true, "a": true, "xn--bcher-kva.example": true, "1.2.3.4": true,
		"": false, "a..b": false, "a.": false, ".a": false, "-a.test": false, "a-.test": false,
		"a_b.test": false, "bücher.example": false, "a b": false,
	} {
		if got := ValidDomain(in); got != want {
			t.Errorf("ValidDomain(%q) = %v, want %v", in, got, want)
		}
	}
}
