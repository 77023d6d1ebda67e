package connfilter

import (
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk/dnsutil"
)

// FuzzHostPattern: a host pattern the config takes matches some host
// name, as the gateway confirms names (dnsutil.ValidHostname): one that
// matches none refuses the config instead of never matching, silently.
// The names tried fill each '*' with nothing, "a", ".", "a.", ".a" or
// "a.a" (a '*' may stand for a dot, which may have to end the label
// before it, begin the label after it, or both) and each '?' with "a".
func FuzzHostPattern(f *testing.F) {
	for _, s := range []string{"*.dyn.example", "mail?.example", "*", "Bücher.example", "-.example", "a-.example",
		"x*-.example", "10.0.0.1-10.0.0.255", ".example", "host_1.example", strings.Repeat("a", 64) + ".example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := newList("deny")
		if err := l.addHost(s, s); err != nil {
			return
		}
		var p string
		for k := range l.exact {
			p = k
		}
		for k := range l.below {
			p = "*." + k
		}
		for _, g := range l.globs {
			p = g.pattern
		}
		for _, star := range []string{"", "a", ".", "a.", ".a", "a.a"} {
			name := strings.NewReplacer("*", star, "?", "a").Replace(p)
			if dnsutil.ValidHostname(name) && l.matchHost(name) != "" {
				return
			}
		}
		t.Fatalf("host pattern %q (%q) taken, but matches no host name tried", s, p)
	})
}
