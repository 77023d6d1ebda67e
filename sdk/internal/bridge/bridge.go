// Package bridge joins package sdk, which holds the plugin side of the
// protocol and must stay free of host code in its API, to the host-side
// packages under sdk/ (hostrpc, plugintest) without exporting protocol
// plumbing from sdk. Package sdk fills the variables in its init.
package bridge

import (
	"errors"

	"github.com/hashicorp/go-plugin"
)

// The go-plugin handshake cookie. A plugin run by hand does not have it in
// its environment and refuses to start (sdk.Serve explains why).
const (
	MagicCookieKey   = "PORTCULLIS_PLUGIN"
	MagicCookieValue = "d1c3e0b2-portcullis-stage-plugin"
)

// HostPIDEnv names the environment variable in which the host gives a
// plugin its process ID: the plugin exits when its parent is no longer
// that process (orphaned), even if the host died before the plugin
// could note its parent.
const HostPIDEnv = "PORTCULLIS_PLUGIN_HOST_PID"

// PluginName is the single plugin a Portcullis plugin process serves.
const PluginName = "stage"

// MaxMsgSize bounds one gRPC message in either direction. Message bodies are
// never sent whole (they go through the spool file or in chunks), but the
// header fields of a data-phase request are, and a header may be large.
const MaxMsgSize = 64 << 20

// Plugin returns the go-plugin Plugin for stage (an sdk.Stage on the plugin
// side, nil on the host side). Set by package sdk.
var Plugin func(stage any) plugin.Plugin

// ErrUnavailable marks a call that failed because the plugin could not be
// reached (the process died or its socket closed).
var ErrUnavailable = errors.New("plugin unavailable")

// ErrNoConfigCheck is CheckConfig's answer from a plugin whose stage does
// not implement sdk.ConfigChecker, or that was built before the protocol
// carried the call.
var ErrNoConfigCheck = errors.New("the plugin does not check configs")
