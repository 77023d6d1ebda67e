package execfilter

import (
	"context"
	"slices"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// TestOverProtocol runs the stage through the plugin protocol.
func TestOverProtocol(t *testing.T) {
	c := plugintest.Start(t, New())
	if err := c.Configure(sdk.Env{StageName: "exec"}, map[string]any{
		"signatures": []any{map[string]any{"name": "mz", "hex": "4d5a", "offset": 0}},
		"limits":     map[string]any{"timeout": "3s"}}); err != nil {
		t.Fatal(err)
	}
	raw := mimeMessage(attach{"invoice.pdf", "application/pdf", peBytes()}).Bytes()
	res, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: plugintest.FileMessage(t, raw)})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{TagExecutable, TagMismatch, "signature:mz"}
	slices.Sort(want)
	if res.Verdict != sdk.VerdictFail || !slices.Equal(res.Tags, want) || res.Attrs["kinds"] != "pe" {
		t.Errorf("result %+v, want fail with %q", res, want)
	}
}
