package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary text to Parse: it must never panic, and every
// failure must be positioned Errors, not a bare error.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../../examples/quickstart/portcullis.yaml"); err == nil {
		f.Add(string(b))
	}
	f.Add(minimal)
	f.Add(minimal + "queue: {retry: [1m, 1d12h]}\nrelay: {networks: [\"10.0.0.0,255.0.0.0\"]}\n")
	f.Add("a: &a [*a, *a]\nb: &b [*a, *a]\n")
	f.Add("hostname: [a\n")
	f.Add(minimal + "  - <<: &l {name: b, address: ':26'}\n    name: c\nlimits: &m {<<: [*l, *m]}\n---\nx: 1\n")
	f.Add("listeners: [{name: x, address: ':25', tls: starttls}]\n")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseIn([]byte(s), "f.yaml", t.TempDir())
		if err == nil {
			if cfg == nil || len(cfg.Listeners) == 0 {
				t.Fatal("valid config without listeners")
			}
			return
		}
		errs, ok := err.(Errors)
		if !ok || len(errs) == 0 {
			t.Fatalf("error %T %v is not Errors", err, err)
		}
		for _, e := range errs {
			if e.Line < 1 || e.Col < 1 || !strings.HasPrefix(e.Error(), "f.yaml:") {
				t.Fatalf("badly positioned error %q", e.Error())
			}
		}
	})
}
