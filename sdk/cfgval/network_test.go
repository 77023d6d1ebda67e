package cfgval

import "testing"

func TestNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3/8":           "10.0.0.0/8",
		" 192.0.2.7 ":          "192.0.2.7/32",
		"2001:db8::1/32":       "2001:db8::/32",
		"::1":                  "::1/128",
		"::ffff:192.0.2.7":     "192.0.2.7/32",
		"::ffff:192.0.2.0/120": "192.0.2.0/24",
		"::ffff:0.0.0.0/96":    "0.0.0.0/0",
		"::ffff:0:0/80":        "::/80", // shorter than the mapped range: an IPv6 network
		"fe80::/10":            "fe80::/10",
	} {
		p, err := Network(in)
		if err != nil || p.String() != want {
			t.Errorf("Network(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "10.0.0.0/33", "fe80::1%eth0", "host.example", "10.0.0.0/8/8"} {
		if p, err := Network(in); err == nil {
			t.Errorf("Network(%q) = %v; want an error", in, p)
		}
	}
}
