// Package sdk is the only public API of Portcullis for stage authors.
//
// A plugin is an executable that serves one Stage over the versioned plugin
// protocol (hashicorp/go-plugin over gRPC). The gateway starts it once and
// shares it among all SMTP sessions. This is a complete plugin:
//
//	package main
//
//	import (
//		"context"
//		"strings"
//
//		"github.com/portcullis-mta/portcullis/sdk"
//	)
//
//	type noReply struct{}
//
//	func (noReply) Info() sdk.Info {
//		return sdk.Info{Name: "noreply", Version: "1.0", Phases: []sdk.Phase{sdk.PhaseMail}}
//	}
//
//	func (noReply) Configure(context.Context, sdk.Env, map[string]any) error { return nil }
//
//	func (noReply) Check(_ context.Context, req *sdk.Request) (*sdk.Result, error) {
//		if strings.HasPrefix(req.Envelope.From, "noreply@") {
//			return &sdk.Result{Verdict: sdk.VerdictNeutral, Tags: []string{"noreply"}}, nil
//		}
//		return &sdk.Result{Verdict: sdk.VerdictNone}, nil
//	}
//
//	func main() { sdk.Serve(noReply{}) }
//
// A stage reports facts (a Result: verdict, score, tags, attrs, reason and,
// at the data phase, header edits); it never writes SMTP replies. Rules in
// the gateway turn results into actions.
//
// # Calls
//
// A call crosses a process boundary and costs about 100 µs, more than the
// gateway spends on the SMTP dialogue of a whole message: a stage is called
// only at the phases its Info asks for, so ask for as few as you need.
// Check is called concurrently by many sessions. Its context carries the
// stage's timeout from the rule file; honour it. An error, a timeout or a
// crash all become the stage's on_error in the gateway; a panic in Check
// is recovered and reported as that call's error.
//
// # Config
//
// Configure receives the `config:` map of the stage's rule-file entry as
// YAML decoded it: strings, bool, int for whole numbers, float64, []any and
// map[string]any. It is called at load and at every reload; return an error
// to refuse a config, and keep the previous one in force when you do.
//
// # Messages
//
// At the data phase Request.Message carries the top-level header fields and
// gives the whole message through Open. The bytes are not copied into the
// call: the plugin reads the gateway's spool file itself, and when it
// cannot (or the gateway holds the message in memory) Open streams the
// bytes from the gateway in chunks. Read only what you need.
//
// # Lifetime
//
// The gateway starts a plugin at load and stops it at exit or when a
// reload drops its stage; Closer.Close runs then. A plugin ignores SIGTERM
// (the gateway still needs it while it drains) and exits by itself if the
// gateway goes away.
//
// # Logs
//
// Serve points the default slog logger at the gateway: a stage's slog
// calls appear in the gateway's log with stage=<name>, at their level.
// Anything written to stdout or stderr is logged too.
//
// # Tests
//
// Package sdk/plugintest serves a stage over the real protocol inside a
// unit test. The protocol types (protobuf, gRPC) never appear in this API:
// they live in sdk/internal and the version is ProtocolVersion.
package sdk
