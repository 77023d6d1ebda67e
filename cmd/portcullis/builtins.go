package main

import "github.com/portcullis-mta/portcullis/sdk"

// builtinStages are the stages this binary serves with `portcullis plugin NAME`.
var builtinStages = map[string]func() sdk.Stage{}

// isBuiltin reports whether name is a built-in plugin.
func isBuiltin(name string) bool {
	_, ok := builtinStages[name]
	return ok
}
