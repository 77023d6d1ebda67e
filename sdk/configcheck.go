package sdk

import "context"

// ConfigChecker is an optional ability of a Stage: it validates a config
// as Configure would, without applying it, so that `portcullis check`
// reports a config the stage would refuse before `run` or a reload does.
//
// CheckConfig must validate everything Configure validates: the keys and
// their values, the files the config names (read and parsed), the
// patterns it compiles. It must leave nothing behind: no state file
// opened (a running gateway holds its lock), no connection made to a
// service the config names (check that its address parses, not that it
// answers), no goroutine left running, and the stage itself unchanged.
// Its error reads as Configure's would, starting with the key.
//
// `portcullis check` calls it on the built-in stages in its own process,
// and on a plugin executable's stage over the plugin protocol: it starts
// the plugin (main runs, then Serve), calls Info and CheckConfig, never
// Configure, and stops it. A stage that does not implement it has its
// config checked when `run`, `scan` or a reload calls Configure.
type ConfigChecker interface {
	CheckConfig(ctx context.Context, env Env, config map[string]any) error
}
