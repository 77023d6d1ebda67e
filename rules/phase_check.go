package rules

import "github.com/portcullis-mta/portcullis/sdk"

// CheckPhases is Bind for `portcullis check`, which may not know the
// phases of every stage: a stage missing from stagePhases (its plugin
// could not be asked) is no problem here, and every check that depends on
// its phases is skipped: those of a rule that reads its results, of its
// own when, and of a when's reference to it. So is a rule with a phase
// problem that Load (or LoadPartial) reports already: `run` stops there,
// with that problem, before Bind. The problems of the rest are Bind's, in
// the same words; they come back unsorted (see SortProblems).
// Like Bind, it sets Stage.Phases and Rule.Phase where they are known.
func (s *Set) CheckPhases(stagePhases map[string][]sdk.Phase) Problems {
	known := &Set{fns: s.fns, files: s.files}
	for _, st := range s.Stages {
		if ph, ok := stagePhases[st.Name]; ok {
			st.Phases = ph
			known.Stages = append(known.Stages, st)
		}
	}
	for _, r := range s.Rules {
		loadProbs := (&Set{Rules: []*Rule{r}}).assignPhases(nil)
		if len(loadProbs) == 0 && r.readsResultsOf(stagePhases) {
			known.Rules = append(known.Rules, r)
		}
	}
	probs := known.assignPhases(stagePhases)
	for _, st := range known.Stages {
		probs = append(probs, known.checkStageWhen(st)...)
	}
	return probs
}

// readsResultsOf reports whether every results.<stage> the rule reads
// names a stage of stagePhases.
func (r *Rule) readsResultsOf(stagePhases map[string][]sdk.Phase) bool {
	for _, p := range r.programs() {
		for _, ref := range p.results {
			if _, ok := stagePhases[ref.stage]; !ok {
				return false
			}
		}
	}
	return true
}
