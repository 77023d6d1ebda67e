// Command faultplugin serves faultstage for the host's tests.
package main

import (
	"github.com/portcullis-mta/portcullis/core/pluginhost/internal/faultstage"
	"github.com/portcullis-mta/portcullis/sdk"
)

func main() { sdk.Serve(&faultstage.Stage{}) }
