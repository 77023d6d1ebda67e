package main

import (
	"github.com/portcullis-mta/portcullis/plugins/antivirus"
	"github.com/portcullis-mta/portcullis/plugins/bayes"
	"github.com/portcullis-mta/portcullis/plugins/connfilter"
	"github.com/portcullis-mta/portcullis/plugins/dnsbl"
	"github.com/portcullis-mta/portcullis/plugins/execfilter"
	"github.com/portcullis-mta/portcullis/plugins/greylist"
	"github.com/portcullis-mta/portcullis/plugins/msgauth"
	"github.com/portcullis-mta/portcullis/plugins/rdns"
	"github.com/portcullis-mta/portcullis/plugins/textfilter"
	"github.com/portcullis-mta/portcullis/sdk"
)

// builtinStages are the stages this binary serves with `portcullis plugin NAME`.
var builtinStages = map[string]func() sdk.Stage{
	"connfilter": connfilter.New,
	"dnsbl":      dnsbl.New,
	"rdns":       rdns.New,
	"greylist":   greylist.New,
	"textfilter": textfilter.NewText,
	"subject":    textfilter.NewSubject,
	"execfilter": execfilter.New,
	"antivirus":  antivirus.New,
	"bayes":      bayes.New,
	"msgauth":    msgauth.New,
}

// isBuiltin reports whether name is a built-in plugin.
func isBuiltin(name string) bool {
	_, ok := builtinStages[name]
	return ok
}
