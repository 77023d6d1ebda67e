package dnsbl

import (
	"context"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/dnsutil/dnsutiltest"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// TestOverProtocol runs the stage configured as in
// examples/rules/connection.yaml over the plugin protocol, against an
// in-process DNS server holding those zones.
func TestOverProtocol(t *testing.T) {
	srv := dnsutiltest.New(t,
		"5.113.0.203.bl.example.test. 60 IN A 127.0.0.2",
		`5.113.0.203.bl.example.test. 60 IN TXT "Blocked, see https://bl.example.test/203.0.113.5"`,
		"6.113.0.203.combined.example.test. 60 IN A 127.0.0.3",
		"7.113.0.203.bl.example.test. 60 IN A 127.0.0.2",
		"7.113.0.203.wl.example.test. 60 IN A 127.0.10.1",
		"bad.example.dbl.example.test. 60 IN A 127.0.1.2",
	)
	c := plugintest.Start(t, New())
	if err := c.Configure(sdk.Env{StageName: "dnsbl", DNSServers: []string{srv.Addr}}, plugintest.StageConfig(t, "../../examples/rules/connection.yaml", "dnsbl")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ip, helo, from string
		want           sdk.Verdict
		zone           string
	}{
		{"203.0.113.5", "h.example", "a@good.example", sdk.VerdictFail, "bl.example.test"},
		{"203.0.113.6", "h.example", "a@good.example", sdk.VerdictNeutral, "combined.example.test"},
		{"203.0.113.7", "h.example", "a@good.example", sdk.VerdictPass, "bl.example.test"},
		{"203.0.113.8", "h.example", "a@bad.example", sdk.VerdictFail, "dbl.example.test"},
		{"203.0.113.8", "h.example", "a@good.example", sdk.VerdictNone, ""},
	} {
		res, err := c.Check(context.Background(), req(sdk.PhaseMail, tt.ip, tt.helo, tt.from))
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != tt.want || res.Attrs["zone"] != tt.zone {
			t.Errorf("%s %s: %s %v, want %s at %q", tt.ip, tt.from, res.Verdict, res.Attrs, tt.want, tt.zone)
		}
	}
	srv.ServFail("9.113.0.203.bl.example.test.")
	if res, err := c.Check(context.Background(), req(sdk.PhaseHelo, "203.0.113.9", "h.example", "")); err == nil {
		t.Errorf("SERVFAIL over the protocol: %+v, want an error", res)
	}
}
