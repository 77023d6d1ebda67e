// Package hostrpc is the host's end of the Portcullis plugin protocol: what
// a gateway (core/pluginhost) or a test harness (sdk/plugintest) uses to
// talk to a plugin process. Stage authors do not need it.
//
// It hides the protobuf and gRPC types as package sdk does: a Client speaks
// in sdk.Info, sdk.Request and sdk.Result.
package hostrpc

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/internal/bridge"
)

// PluginName is the name under which a plugin process serves its stage.
const PluginName = bridge.PluginName

// HostPIDEnv is the environment variable through which a host tells a
// plugin its process ID ("NAME=PID" in the plugin's environment); a plugin
// exits when its parent is no longer that process.
const HostPIDEnv = bridge.HostPIDEnv

// Client is one plugin process as the host sees it. It is safe for
// concurrent use: all sessions share it.
type Client interface {
	// Info asks for the stage's description and checks the protocol version.
	Info(ctx context.Context) (sdk.Info, error)
	// Configure validates and applies the stage's config in the plugin.
	Configure(ctx context.Context, env sdk.Env, config map[string]any) error
	// CheckConfig validates a config as Configure would, without applying
	// it (sdk.ConfigChecker in the plugin). ErrNoConfigCheck: the plugin
	// cannot (its stage does not implement it, or its SDK predates it).
	CheckConfig(ctx context.Context, env sdk.Env, config map[string]any) error
	// Check runs one phase. A data-phase message is not copied into the
	// call: the plugin opens the spool file, or reads the bytes back from
	// the host in chunks when the message is in memory or the file cannot
	// be opened.
	Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error)
}

// ErrNoConfigCheck is CheckConfig's error from a plugin that cannot check
// a config without applying it.
var ErrNoConfigCheck = bridge.ErrNoConfigCheck

// Handshake is the go-plugin handshake: protocol version and cookie.
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  sdk.ProtocolVersion,
		MagicCookieKey:   bridge.MagicCookieKey,
		MagicCookieValue: bridge.MagicCookieValue,
	}
}

// Plugins is the go-plugin plugin set for a host (ClientConfig.Plugins).
func Plugins() plugin.PluginSet {
	return plugin.PluginSet{PluginName: bridge.Plugin(nil)}
}

// ServerPlugins is the plugin set serving stage, for in-process harnesses
// such as plugin.TestPluginGRPCConn.
func ServerPlugins(stage sdk.Stage) plugin.PluginSet {
	return plugin.PluginSet{PluginName: bridge.Plugin(stage)}
}

// DialOptions raise gRPC's message size limit for the header fields of a
// data-phase request (ClientConfig.GRPCDialOptions).
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(bridge.MaxMsgSize), grpc.MaxCallSendMsgSize(bridge.MaxMsgSize))}
}

// Dispense returns the Client of a started plugin connection.
func Dispense(cp plugin.ClientProtocol) (Client, error) {
	raw, err := cp.Dispense(PluginName)
	if err != nil {
		return nil, err
	}
	c, ok := raw.(Client)
	if !ok {
		return nil, fmt.Errorf("hostrpc: plugin dispensed %T, not a stage client", raw)
	}
	return c, nil
}

// ErrUnavailable is in the chain of a call's error when the plugin could
// not be reached (the process died, its socket closed): the host should
// restart it. A stage's own error or a deadline is not one.
var ErrUnavailable = bridge.ErrUnavailable
