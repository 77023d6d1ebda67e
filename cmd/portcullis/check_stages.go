package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/pluginhost"
	"github.com/portcullis-mta/portcullis/rules"
	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/hostrpc"
)

// stageCheckTimeout bounds one stage's CheckConfig. It reads files and
// compiles patterns but asks no service, so this is only a guard.
const stageCheckTimeout = 30 * time.Second

// pluginCheckTimeout bounds the start of a plugin executable and its
// CheckConfig: a plugin that does not answer by then is reported. It is
// what a lone start (a restart, scan) gives a plugin, so that check, run
// as the systemd unit's ExecStartPre, refuses no plugin run would start.
const pluginCheckTimeout = 30 * time.Second

// checkStages reports, in the order of the stages, each stage `run` would
// refuse: a plugin that is neither a built-in nor an executable
// (checkPlugin), or a stage's `config:` map that its Configure would
// refuse. A built-in is asked in this process, with the Env that `run`
// gives it, through sdk.ConfigChecker: no state file is opened (a running
// daemon's locks do not matter) and no service is asked. A plugin
// executable is started for the question (the plugin protocol's
// CheckConfig) and stopped; one that does not start is reported as `run`
// would report it, and one that cannot check configs (its stage is no
// sdk.ConfigChecker, or its SDK predates the call) is checked only when
// `run` starts it. A refusal reads "file:line:col: stage NAME: config
// refused: ..." at the stage's config key.
//
// phases has, by stage name, the phases each stage's plugin said it runs
// at (sdk.Info.Phases, what `run` binds the rules with) for every stage
// whose plugin could be asked, whether or not it could check its config;
// a stage whose plugin could not be started is not in it.
func checkStages(cfg *config.Config, set *rules.Set) (errs []error, phases map[string][]sdk.Phase) {
	specs := stageSpecs(cfg, set)
	answers := make([]stageAnswer, len(specs))
	var host *pluginhost.Host
	defer func() {
		if host != nil {
			host.Close()
		}
	}()
	// Plugin executables are asked at once, several at a time: each may
	// take up to pluginCheckTimeout, and ten slow ones one after the other
	// would hold a systemd start for minutes.
	sem := make(chan struct{}, maxPluginChecks)
	var wg sync.WaitGroup
	for i, spec := range specs {
		if err := checkPlugin(cfg, set.Stages[i]); err != nil {
			answers[i] = stageAnswer{err: err, bad: true}
			continue
		}
		if newStage, ok := builtinStages[spec.Plugin]; ok {
			answers[i] = checkBuiltin(newStage(), spec)
			continue
		}
		if host == nil {
			host = pluginhost.New(pluginhost.Options{Logger: checkLogger()})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), pluginCheckTimeout)
			defer cancel()
			info, err := host.CheckConfigInfo(ctx, spec)
			if errors.Is(err, hostrpc.ErrNoConfigCheck) {
				err = nil
			}
			answers[i] = stageAnswer{phases: info.Phases, err: err}
		}()
	}
	wg.Wait()
	phases = map[string][]sdk.Phase{}
	pos := configKeyFinder{}
	for i, a := range answers {
		spec := specs[i]
		if len(a.phases) > 0 {
			phases[spec.Name] = a.phases
		}
		switch {
		case a.err == nil:
		case a.bad:
			errs = append(errs, a.err)
		case errors.Is(a.err, pluginhost.ErrConfigRefused):
			msg := fmt.Sprintf("stage %s: %v", spec.Name, a.err)
			errs = append(errs, rules.Problem{Pos: pos.find(set.Stages[i].Pos), Msg: msg})
		default:
			msg := fmt.Sprintf("stage %s: %s", spec.Name, oneLine(a.err.Error()))
			errs = append(errs, rules.Problem{Pos: set.Stages[i].PluginPos, Msg: msg})
		}
	}
	return errs, phases
}

// maxPluginChecks bounds the plugin executables check runs at once.
const maxPluginChecks = 8

// stageAnswer is what checking one stage found: the phases its plugin
// declared (none when it could not be asked), and its problem: a refused
// config (pluginhost.ErrConfigRefused), a plugin that could not be started
// or asked, or (bad) one checkPlugin reported in full.
type stageAnswer struct {
	phases []sdk.Phase
	err    error
	bad    bool
}

// checkBuiltin asks a built-in stage, in this process, about spec's config.
func checkBuiltin(stage sdk.Stage, spec pluginhost.Spec) stageAnswer {
	a := stageAnswer{phases: stage.Info().Phases}
	if checker, ok := stage.(sdk.ConfigChecker); ok {
		if err := checkStageConfig(checker, spec.Env, spec.Config); err != nil {
			a.err = fmt.Errorf("%w: %w", pluginhost.ErrConfigRefused, err)
		}
	}
	return a
}

// oneLine joins the lines of an error (go-plugin's start errors have
// several) so that a problem stays one line of check's output.
func oneLine(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case b.Len() == 0:
		case strings.HasSuffix(b.String(), ":"):
			b.WriteByte(' ')
		default:
			b.WriteString("; ")
		}
		b.WriteString(line)
	}
	return b.String()
}

// checkLogger takes what plugin executables log while check asks them:
// their warnings and errors go to stderr, the host's chatter nowhere.
func checkLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// checkStageConfig calls CheckConfig, turning a panic into the error it
// would be in a plugin process: check must report every problem, not stop
// at one stage's bug.
func checkStageConfig(c sdk.ConfigChecker, env sdk.Env, raw map[string]any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), stageCheckTimeout)
	defer cancel()
	return c.CheckConfig(ctx, env, raw)
}

// configKeyFinder finds the `config:` key of a stage in its rule file,
// whose position rules.Stage does not keep (it has the stage's). Each
// file is parsed once.
type configKeyFinder map[string]*yaml.Node

// find returns the position of the config key of the stage mapping at
// stage, or stage itself when the file or the key cannot be found.
func (f configKeyFinder) find(stage rules.Pos) rules.Pos {
	if stage.File == "" || stage.Line == 0 {
		return stage
	}
	root, seen := f[stage.File]
	if !seen {
		var doc yaml.Node
		if b, err := os.ReadFile(stage.File); err == nil && yaml.Unmarshal(b, &doc) == nil {
			root = &doc
		}
		f[stage.File] = root
	}
	if key := configKey(root, stage.Line, stage.Col); key != nil {
		return rules.Pos{File: stage.File, Line: key.Line, Col: key.Column}
	}
	return stage
}

// configKey returns the key node "config" of the mapping under n that
// starts at line:col, or nil.
func configKey(n *yaml.Node, line, col int) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.MappingNode && n.Line == line && n.Column == col {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "config" {
				return n.Content[i]
			}
		}
		return nil
	}
	for _, c := range n.Content {
		if k := configKey(c, line, col); k != nil {
			return k
		}
	}
	return nil
}
