package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/portcullis-mta/portcullis/rules"
	"github.com/portcullis-mta/portcullis/sdk"
)

// StageClient is a loaded stage as the pipeline needs it. core/pluginhost's
// *Stage satisfies it; tests use in-process fakes.
type StageClient interface {
	Info() sdk.Info
	Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error)
}

// Engine is the Runner of a rule set: it runs its stages and rules. It is
// safe for concurrent use by every session; a reload builds a new Engine.
// (It cannot be called Runner: that is the interface sessions use.)
type Engine struct {
	set    *rules.Set
	phases map[sdk.Phase][]*stage // stages of each phase, in rule-file order
	wants  map[sdk.Phase]bool
	log    *slog.Logger
}

var _ Runner = (*Engine)(nil)

// stage is a rule-file stage with its client.
type stage struct {
	*rules.Stage
	client StageClient
	// droppedEdits: header edits this stage returned outside the data
	// phase were dropped and a warning said so (once per config).
	droppedEdits atomic.Bool
}

// New binds set to the loaded stages: each stage of the set needs a client
// under its name, whose Info().Phases say when it runs (set.Bind places the
// rules accordingly). The error is rules.Problems or a missing client.
func New(set *rules.Set, clients map[string]StageClient, logger *slog.Logger) (*Engine, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Engine{set: set, phases: map[sdk.Phase][]*stage{}, wants: map[sdk.Phase]bool{}, log: logger}
	stagePhases := map[string][]sdk.Phase{}
	for _, st := range set.Stages {
		c, ok := clients[st.Name]
		if !ok {
			return nil, fmt.Errorf("%s: stage %q has no loaded plugin", st.Pos, st.Name)
		}
		stagePhases[st.Name] = c.Info().Phases
	}
	if err := set.Bind(stagePhases); err != nil {
		return nil, err
	}
	for _, st := range set.Stages {
		for _, ph := range st.Phases {
			r.phases[ph] = append(r.phases[ph], &stage{Stage: st, client: clients[st.Name]})
		}
	}
	for _, ph := range sdk.Phases {
		r.wants[ph] = len(r.phases[ph]) > 0 || set.HasRules(ph)
	}
	return r, nil
}

// Set returns the rule set the runner was built from.
func (r *Engine) Set() *rules.Set { return r.set }

// ReadsPregreet reports whether a rule or a stage's when may read
// conn.pregreet (rules.Set.ReadsPregreet).
func (r *Engine) ReadsPregreet() bool { return r.set.ReadsPregreet() }

// Wants reports whether a stage or a rule is bound to phase.
func (r *Engine) Wants(phase sdk.Phase) bool { return r.wants[phase] }

// Stages returns the names of the stages that run at phase, in order.
func (r *Engine) Stages(phase sdk.Phase) []string {
	var names []string
	for _, st := range r.phases[phase] {
		names = append(names, st.Name)
	}
	return names
}

// Run runs the phase's stages in parallel, then its rules (see Decision).
// A stage fault decides by the stage's on_error before any rule: tempfail
// (451 4.3.0, never a 5xx for a fault), reject (554 5.7.1) or continue
// (the rules see verdict "error").
func (r *Engine) Run(ctx context.Context, req *sdk.Request, results map[string]*sdk.Result) (*Decision, error) {
	if results == nil {
		results = map[string]*sdk.Result{}
	}
	env := r.set.NewEnv(req, results, factsFrom(ctx))
	d := &Decision{Action: Continue, Results: results}
	fault := r.runStages(ctx, req, env, d)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pipeline %s: %w", req.Phase, err)
	}
	if fault != nil {
		r.logDecision(ctx, req, fault) // what the session acts on, not the Continue it replaces
		return fault, nil
	}
	if err := r.applyRules(req.Phase, env, d); err != nil {
		return nil, err
	}
	r.logDecision(ctx, req, d)
	return d, nil
}
