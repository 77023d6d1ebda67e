package antivirus

import (
	"context"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// TestOverProtocol: an infected result and a scan failure through the
// plugin protocol (a failure must reach the host as an error).
func TestOverProtocol(t *testing.T) {
	c := plugintest.Start(t, New())
	addr := fakeClamdExact(t, "stream: Test.Sig FOUND\x00", 0)
	if err := c.Configure(sdk.Env{StageName: "av"}, map[string]any{"clamd": "tcp:" + addr}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: plugintest.Message(plain([]byte("x")))})
	if err != nil || res.Verdict != sdk.VerdictFail || res.Attrs["virus"] != "Test.Sig" {
		t.Fatalf("result %+v error %v", res, err)
	}
	down := fakeClamdExact(t, "", 0)
	if err := c.Configure(sdk.Env{StageName: "av"}, map[string]any{"clamd": "tcp:" + down, "timeout": "2s"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if res, err := c.Check(ctx, &sdk.Request{Phase: sdk.PhaseData, Message: plugintest.Message(plain([]byte("x")))}); err == nil {
		t.Errorf("no error from a clamd that does not answer: %+v", res)
	}
}
