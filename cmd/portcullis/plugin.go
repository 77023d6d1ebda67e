package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
)

func init() {
	register(&command{
		name:    "plugin",
		summary: "serve built-in stage NAME over the plugin protocol (the daemon runs its plugins this way)",
		run:     runPlugin,
	})
}

// servePlugin is sdk.Serve; a variable so that a test can see which stage
// would be served without becoming a plugin process.
var servePlugin = sdk.Serve

func runPlugin(args []string, _, stderr io.Writer) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "usage: portcullis plugin NAME\nbuilt-in stages: %s\n", builtinNames())
		return exitUsage
	}
	newStage, ok := builtinStages[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "portcullis plugin: unknown built-in stage %q\nbuilt-in stages: %s\n", args[0], builtinNames())
		return exitUsage
	}
	if !startedByHost() {
		// sdk.Serve's own hint names the executable ("plugin:
		// /usr/bin/portcullis"), which in a rule file would run the
		// gateway binary without the "plugin NAME" arguments.
		fmt.Fprintf(stderr, "portcullis plugin %s serves the built-in stage %s to a gateway, which starts it; it is not run by hand.\n"+
			"Name it as the plugin of a stage in a rule file (plugin: %s).\n", args[0], args[0], args[0])
		return exitFailed
	}
	servePlugin(newStage()) // exits the process when run by a host
	return exitOK
}

// startedByHost reports a process started by a plugin host, which sets
// the handshake cookie in the environment.
var startedByHost = func() bool {
	hs := hostrpc.Handshake()
	return os.Getenv(hs.MagicCookieKey) == hs.MagicCookieValue
}

func builtinNames() string {
	names := make([]string, 0, len(builtinStages))
	for n := range builtinStages {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}
