// Package plugintest lets a stage author test a stage over the real plugin
// protocol (gRPC through go-plugin, in process) in an ordinary unit test:
//
//	c := plugintest.Start(t, &MyStage{})
//	if err := c.Configure(sdk.Env{StageName: "my"}, map[string]any{"k": "v"}); err != nil { ... }
//	res, err := c.Check(ctx, &sdk.Request{Phase: sdk.PhaseData, Message: plugintest.Message(raw)})
//
// Everything the gateway sends goes through the wire: config as the host
// encodes it, data-phase messages from a spool file (FileMessage) or read
// back from the host in chunks (Message), results as the host checks them
// (a result the gateway would refuse is Check's error here too).
//
// The stage runs in the test's process, so its slog lines go to the test's
// default logger, without the session and queue_id that sdk.Serve adds in
// the gateway; wrap the handler with sdk.RequestLogHandler to see them. A
// Client is safe for concurrent use: run Check from several goroutines and
// Configure between them, under -race, to test a stage as the gateway
// calls it.
package plugintest

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
)

// Client is the host's end of a stage served by Start.
type Client struct {
	c hostrpc.Client
}

// quietOnce silences go-plugin's debug chatter: its test harness logs
// through an hclog logger on hclog.DefaultOutput, which it cannot be told
// about otherwise. A stage's own slog output is untouched.
var quietOnce sync.Once

// Start serves stage over the plugin protocol for the duration of the test.
// It asks the stage's Info first, as the host does at load, and fails the
// test when the gateway would refuse it (sdk.Info.Validate: no name, no
// phase, an unknown phase), so that a stage that could not be loaded does
// not pass its tests.
func Start(t testing.TB, stage sdk.Stage) *Client {
	t.Helper()
	quietOnce.Do(func() { hclog.DefaultOutput = io.Discard })
	client, _ := plugin.TestPluginGRPCConn(t, false, hostrpc.ServerPlugins(stage))
	t.Cleanup(func() {
		// Close asks the server to shut down (go-plugin's controller),
		// so the server is not stopped a second time here.
		_ = client.Close()
		if c, ok := stage.(sdk.Closer); ok {
			_ = c.Close()
		}
	})
	c, err := hostrpc.Dispense(client)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	cl := &Client{c: c}
	if _, err := cl.Info(); err != nil {
		t.Fatalf("plugintest: the gateway would not load this stage: %v", err)
	}
	return cl
}

// Info asks the stage to describe itself, as the host does at load; an
// Info the host refuses (sdk.Info.Validate) is an error here too.
func (c *Client) Info() (sdk.Info, error) {
	info, err := c.c.Info(context.Background())
	if err != nil {
		return info, err
	}
	return info, info.Validate()
}

// Configure sends env and config as the host does at load and reload.
func (c *Client) Configure(env sdk.Env, config map[string]any) error {
	return c.c.Configure(context.Background(), env, config)
}

// CheckConfig sends env and config as `portcullis check` does, for a
// stage that implements sdk.ConfigChecker; hostrpc.ErrNoConfigCheck if it
// does not. (CheckConfigs tests a checker in process, with cases.)
func (c *Client) CheckConfig(env sdk.Env, config map[string]any) error {
	return c.c.CheckConfig(context.Background(), env, config)
}

// Check runs one phase through the protocol. Header edits in a result of
// a phase other than data are dropped, as the gateway drops them (there is
// no message yet to edit), so a test sees only the edits that apply.
func (c *Client) Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error) {
	res, err := c.c.Check(ctx, req)
	if res != nil && req.Phase != sdk.PhaseData {
		res.Headers = nil
	}
	return res, err
}
