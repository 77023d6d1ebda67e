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
// A call crosses a process boundary and costs about 250 µs of CPU, gateway
// and plugin together (README, Performance), more than the gateway spends on
// the SMTP dialogue of a whole message: a stage is called
// only at the phases its Info asks for, so ask for as few as you need.
//
// One plugin process serves every SMTP session: Check is called
// concurrently, and Configure is called again at a reload while Check
// calls are in flight. Keep the config in one value that Configure
// replaces whole (a sync.RWMutex, or an atomic.Pointer as
// examples/plugin-hello does), and make anything Check shares safe for
// concurrent use. The gateway starts a plugin with GOMAXPROCS=1 unless its
// own environment sets GOMAXPROCS: concurrent calls share one CPU.
//
// Check's context carries the stage's timeout from the rule file (timeout:,
// default 5s) and is cancelled when the call is given up; pass it to every
// lookup and read, and return when it is done. The gateway does not wait
// for a call past its timeout: it applies the stage's on_error, and after
// many timeouts in a row it restarts the plugin as hung.
//
// # Results and errors
//
// Return an error when the stage could not do its job (a DNS failure, a
// scanner down, an unreadable message): the gateway applies the stage's
// on_error (tempfail unless the rule file says continue or reject) before
// any rule runs, and with on_error: continue the rules see verdict "error"
// with the error as reason. A panic in Check (or Configure) is recovered
// and is that call's error; the process goes on.
//
// Returning a Result with VerdictError instead is a fact like any other:
// on_error does not apply, and unless a rule tests
// results.<stage>.verdict == "error" nothing happens and the message goes
// on. Use it only where the rule file is expected to decide (the built-in
// dnsbl does, and the example rules tempfail on it).
//
// A plugin process that dies (a panic in a goroutine of its own, os.Exit,
// a signal) is restarted as soon as the gateway sees it exit; calls made
// before the new process is up, and those in flight when it died, get the
// stage's on_error. Return errors rather than exit.
//
// A nil Result, or a zero Verdict, is VerdictNone. Score is a number the
// rules compare (results.<stage>.score >= 5); the gateway gives it no scale
// or default threshold, so document yours. It must be finite: a NaN or
// infinite score, an unknown verdict or a malformed header edit makes the
// whole result that call's error (see Result.Validate). Tags, attrs and
// reason together are limited to 1 MiB.
//
// # Config
//
// Configure receives the `config:` map of the stage's rule-file entry as
// YAML decoded it: strings, bool, int for whole numbers, float64, []any and
// map[string]any (package sdk/cfgval reads them, with the key in its
// errors). It is called when the plugin starts (at load, and again after
// a restart), at every reload, and once more with the previous config when
// a reload is refused elsewhere (so for a moment, until that second call,
// Check may run with a config the reload then drops). Return an error to
// refuse a config and keep the previous one in force when you do. Refuse
// unknown keys, so that a typo fails at load. The plugin's working
// directory is the gateway's, not the config's: resolve a relative path in
// the config against Env.ConfigDir.
//
// Configure has a deadline, in its context: pass ctx to what it waits
// on, and keep slow work (fetching a list, loading a large model) for the
// background or for Check. A load or reload (`portcullis run` at start
// and at each SIGHUP) gives all the stages together one minute, starting
// the new ones included; a start of one plugin with no other deadline (a
// restart after a crash, `portcullis scan`) has 30 seconds for the
// handshake, Info and Configure; putting the previous config back after
// a refused reload has 30 seconds. A Configure that overruns its
// deadline, or whose plugin becomes unreachable meanwhile, is not a
// refusal: the load or reload fails with "stage NAME: Configure timed out
// after Ns". Since the plugin might still apply that config when the call
// ends, the gateway kills the process: a stage that was running is
// restarted, as after a crash, and configured with the config in force
// (the one from before the reload), and its Check calls get the stage's
// on_error until the new process is up.
//
// `portcullis run`, `portcullis scan` and a reload fail on a refused
// config with "stage NAME: config refused: " and the error text, which
// has no file or line, so start the text with the key (cfgval.Key does).
// `portcullis check` asks each stage through ConfigChecker, an optional
// ability that validates a config as Configure would without opening
// state files, connecting anywhere or leaving goroutines behind, and
// reports a refusal at the stage's `config:` key in its rule file: a
// built-in in check's own process, a plugin executable by starting it,
// calling CheckConfig over the protocol and stopping it. A plugin whose
// stage does not implement ConfigChecker has its config checked only when
// `run`, `scan` or a reload starts it.
//
// # Messages
//
// At the data phase Request.Message carries the top-level header fields
// (the gateway's own Received field first; values unfolded but not decoded:
// mime.DecodeHeader of package sdk/mime decodes RFC 2047 words in any
// charset Japanese mail uses, which the standard library's
// mime.WordDecoder does not) and gives the whole message, header and body,
// through Open. The bytes are not copied into the call: the plugin reads
// the gateway's spool file itself, and when it cannot (or the gateway
// holds the message in memory) Open streams the bytes from the gateway in
// chunks. Each Open starts again at the first byte, so a stage may read
// the message twice; read only what you need, and close each reader. A
// stage that walks the whole message reads it with ReadAll, into one
// buffer of the message's size (sdk/mime's ParseMessage does).
//
// Messages read whole are bounded per plugin process by a budget of bytes
// (DefaultMessageBudget, 64 MiB; SetMessageBudget in main changes it):
// ReadAll takes the message's size from it and waits in line while other
// calls hold it, a message larger than the budget taking all of it. The
// wait ends with the context's error when Check's context is done, and
// the gateway applies the stage's on_error; a burst of large messages is
// so read one after another, where all at once they ran the plugin out of
// memory or all timed out together. Serve gives the call's share back
// when Check returns.
// The message can be read only while Check runs: keep no Message, and no
// reader, for after it returns. Message is nil at the other phases.
//
// Header edits (Result.Headers) apply at the data phase only and are
// applied after all stages ran, so no stage sees another's. A value must
// not hold a line break or NUL (Result.Validate). The gateway folds a long
// value at its spaces and RFC 2047-encodes one that is not ASCII (base64
// UTF-8 words), so a plain UTF-8 value is fine; a value already encoded
// (mime.QEncoding.Encode("utf-8", v)) is ASCII and written as it is.
// Trace fields cannot be removed, and a field a message may hold only once
// is replaced, not repeated (see HeaderEdit).
//
// # State
//
// Env.StatePath is a file the stage may own, derived from the gateway's
// state.path and the stage name ("state.db" and stage "words" give
// "state.words.db"; see StageStatePath), or "" when the gateway has no
// state.path; then refuse a config that needs one. The built-in stages keep
// a bbolt database there. A bbolt file is locked by the process that opens
// it, so: open it once and reuse it while StatePath stays the same
// (Configure runs again at every reload, and without a lock timeout a
// second open in the same process waits forever), close it in
// Closer.Close, and open it with a lock timeout, returning an error when
// it runs out: `portcullis scan` starts the same plugin with the same path
// while the gateway runs.
//
// Request.DryRun marks a call that is a test (`portcullis scan` sets it on
// every call): decide as usual but change no state: no learning, no
// counters, no records. Read what is stored and answer as the real call
// would (a greylist says "new triplet" and records nothing), so that a
// scan leaves the state the gateway shares as it found it.
//
// # Lifetime
//
// The gateway starts a plugin at load and stops it at exit or when a
// reload drops its stage; Closer.Close runs then. A plugin ignores SIGTERM
// (the gateway still needs it while it drains) and exits by itself if the
// gateway goes away. A reload keeps a running plugin process, even when its
// executable was replaced: a new build runs after a restart of the gateway
// (or of that plugin's process).
//
// # Logs
//
// Serve points the default slog logger at the gateway: a stage's slog
// calls appear in the gateway's log with stage=<name>, at their level (the
// gateway's log.level, as it stands at each line, still filters them: a
// reload to debug brings a running plugin's debug lines). Log with Check's
// context,
// slog.InfoContext(ctx, ...), and the line carries the call's session and,
// from the data phase on, its queue_id, as the gateway's own lines about
// the same message do (see RequestLogHandler). Do not name your own
// attributes "stage", which the gateway adds. Anything a plugin writes to
// stdout or stderr once Serve runs is logged too, a line at a time at
// level info; before Serve, stdout carries go-plugin's handshake, so write
// nothing there. Attributes cross to the gateway as JSON: it logs them in
// key order, and numbers as JSON has them (whole numbers as integers).
//
// # Tests
//
// Package sdk/plugintest serves a stage over the real protocol inside a
// unit test. The protocol types (protobuf, gRPC) never appear in this API:
// they live in sdk/internal and the version is ProtocolVersion.
package sdk
