package connfilter

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// TestOverProtocol configures the stage from examples/rules/connection.yaml
// with its files in a temporary directory, over the plugin protocol.
func TestOverProtocol(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "lists"), 0o700)
	writeFile(t, dir, "lists/delegated-latest", delegated)
	writeFile(t, dir, "lists/deny.txt", "203.0.113.77\ncountry:CN\n")
	writeFile(t, dir, "lists/allow.txt", "192.0.2.10\n")
	writeFile(t, dir, "lists/filter.txt", "REJECT/HOST/*.dyn.example\n")
	c := plugintest.Start(t, New())
	if err := c.Configure(sdk.Env{StageName: "connfilter", ConfigDir: dir}, plugintest.StageConfig(t, "../../examples/rules/connection.yaml", "connfilter")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ip, host string
		want     sdk.Verdict
		country  string
	}{
		{"203.0.113.77", "", sdk.VerdictFail, "JP"},
		{"203.0.113.129", "", sdk.VerdictFail, "CN"},
		{"192.0.2.10", "", sdk.VerdictPass, ""},
		{"192.0.2.11", "h.dyn.example", sdk.VerdictFail, ""},
		{"192.0.2.12", "mx.example", sdk.VerdictNone, ""},
	} {
		res, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseConnect, Conn: sdk.Conn{IP: tt.ip, Hostname: tt.host}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != tt.want || res.Attrs["country"] != tt.country {
			t.Errorf("%s: %s %v, want %s country %q", tt.ip, res.Verdict, res.Attrs, tt.want, tt.country)
		}
	}
}
