package rules

import (
	"fmt"
	"iter"

	"github.com/portcullis-mta/portcullis/sdk"
)

// Bind is called once the plugins have said at which phases their stages
// run (sdk.Info.Phases, by stage name). It checks every results.<stage>
// reference and gives each rule the earliest phase at which everything it
// refers to is known: its conn/mail/rcpt/msg facts, the last phase of each
// stage it reads, and the earliest phase its action makes sense at. A rule's
// own phase: key overrides that, but may not be earlier.
func (s *Set) Bind(stagePhases map[string][]sdk.Phase) error {
	var probs Problems
	for _, st := range s.Stages {
		ph, ok := stagePhases[st.Name]
		if !ok {
			probs = append(probs, Problem{st.Pos, fmt.Sprintf("stage %q has no plugin loaded", st.Name)})
			continue
		}
		st.Phases = ph
	}
	probs = append(probs, s.assignPhases(stagePhases)...)
	for _, st := range s.Stages {
		probs = append(probs, s.checkStageWhen(st)...)
	}
	if len(probs) > 0 {
		sortProblems(probs)
		return probs
	}
	return nil
}

// assignPhases sets Rule.Phase. With stagePhases nil (at Load) results
// references are not yet placed.
func (s *Set) assignPhases(stagePhases map[string][]sdk.Phase) Problems {
	var probs Problems
	for _, r := range s.Rules {
		need, why := minPhase[r.Action], "action "+r.Action
		if need == "" {
			need = sdk.PhaseConnect
		}
		for _, p := range r.programs() {
			if phaseIndex(p.phase) > phaseIndex(need) {
				need, why = p.phase, "what it reads"
			}
			for _, ref := range p.results {
				if last := lastPhase(stagePhases[ref.stage]); phaseIndex(last) > phaseIndex(need) {
					need, why = last, "results."+ref.stage
				}
			}
		}
		r.Phase = need
		if r.fixedPhase != "" {
			if phaseIndex(r.fixedPhase) < phaseIndex(need) {
				probs = append(probs, Problem{r.phasePos, fmt.Sprintf("phase %s is too early for rule %q: %s is known at %s", r.fixedPhase, r.Name, why, need)})
				continue
			}
			r.Phase, why = r.fixedPhase, "its phase: key"
		}
		if at := r.readsRcpt(); at != nil && phaseIndex(r.Phase) > phaseIndex(sdk.PhaseRcpt) {
			probs = append(probs, Problem{*at, fmt.Sprintf("rule %q reads rcpt, the recipient of one RCPT command, but runs at %s (%s), where rcpt is empty: use rcpts", r.Name, r.Phase, why)})
		}
	}
	return probs
}

// readsRcpt is where a rule first reads rcpt, or nil.
func (r *Rule) readsRcpt() *Pos {
	for _, p := range r.programs() {
		if p.rcptAt != nil {
			return p.rcptAt
		}
	}
	return nil
}

// checkStageWhen requires a stage's when to be decidable before the stage
// runs: its facts known at its first phase, the stages it reads finished
// at an earlier one (stages of one phase run in parallel).
func (s *Set) checkStageWhen(st *Stage) Problems {
	if st.When == nil || len(st.Phases) == 0 {
		return nil
	}
	first := st.Phases[0]
	for _, p := range st.Phases {
		if phaseIndex(p) < phaseIndex(first) {
			first = p
		}
	}
	var probs Problems
	if phaseIndex(st.When.phase) > phaseIndex(first) {
		probs = append(probs, Problem{st.When.Pos, fmt.Sprintf("stage %q runs at %s, but its when reads what is known at %s", st.Name, first, st.When.phase)})
	} else if at := st.When.rcptAt; at != nil && phaseIndex(lastPhase(st.Phases)) > phaseIndex(sdk.PhaseRcpt) {
		probs = append(probs, Problem{*at, fmt.Sprintf("stage %q also runs at %s, where rcpt is empty, but its when reads rcpt: use rcpts", st.Name, lastPhase(st.Phases))})
	}
	for _, ref := range st.When.results {
		other := s.Stage(ref.stage)
		if other == nil {
			continue
		}
		if last := lastPhase(other.Phases); ref.stage == st.Name || phaseIndex(last) >= phaseIndex(first) {
			probs = append(probs, Problem{ref.pos, fmt.Sprintf("stage %q runs at %s, but results.%s is known only after %s", st.Name, first, ref.stage, last)})
		}
	}
	return probs
}

func lastPhase(ps []sdk.Phase) sdk.Phase {
	var last sdk.Phase
	for _, p := range ps {
		last = laterPhase(last, p)
	}
	return last
}

// programs lists every expression of a rule.
// ReadsPregreet reports whether a rule or a stage's when may read
// conn.pregreet: if none does, a client that talks before the greeting
// can be refused before any of them runs.
func (s *Set) ReadsPregreet() bool {
	for _, r := range s.Rules {
		for _, p := range r.programs() {
			if p.conn.reads("pregreet") {
				return true
			}
		}
	}
	for _, st := range s.Stages {
		if st.When != nil && st.When.conn.reads("pregreet") {
			return true
		}
	}
	return false
}

func (r *Rule) programs() []*Program {
	var out []*Program
	if r.When != nil {
		out = append(out, r.When)
	}
	if r.Reply != nil {
		out = append(out, r.Reply.Text.programs()...)
	}
	if r.Header != nil {
		out = append(out, r.Header.Value.programs()...)
	}
	return out
}

func (t *Template) programs() []*Program {
	if t == nil {
		return nil
	}
	var out []*Program
	for _, p := range t.parts {
		if p.prog != nil {
			out = append(out, p.prog)
		}
	}
	return out
}

// HasRules reports whether any rule is bound to phase.
func (s *Set) HasRules(phase sdk.Phase) bool {
	for _, r := range s.Rules {
		if r.Phase == phase {
			return true
		}
	}
	return false
}

// Matches yields, in order, every rule of phase whose when holds in env. An
// evaluation error is yielded with its rule and stops the sequence.
func (s *Set) Matches(phase sdk.Phase, env *Env) iter.Seq2[*Rule, error] {
	return func(yield func(*Rule, error) bool) {
		for _, r := range s.Rules {
			if r.Phase != phase {
				continue
			}
			ok := true
			if r.When != nil {
				var err error
				if ok, err = r.When.Bool(env); err != nil {
					yield(r, fmt.Errorf("rule %q: %w", r.Name, err))
					return
				}
			}
			if ok && !yield(r, nil) {
				return
			}
		}
	}
}

// Decide returns the first rule of phase that matches env; nil when none.
func (s *Set) Decide(phase sdk.Phase, env *Env) (*Rule, error) {
	for r, err := range s.Matches(phase, env) {
		return r, err
	}
	return nil, nil
}

// RenderReply is the rule's reply in env, or the default for its action:
// reject 550 5.7.1 (554 5.7.1 at connect, RFC 5321 3.1; at rcpt it names the
// recipient, which alone is refused, as Postfix's "Recipient address
// rejected"), tempfail 451 4.7.1.
func (r *Rule) RenderReply(phase sdk.Phase, env *Env) (code int, enhanced, text string, err error) {
	if r.Reply != nil {
		text, err = r.Reply.Text.Render(env)
		return r.Reply.Code, r.Reply.Enhanced, text, err
	}
	switch {
	case r.Action == ActionTempfail:
		return 451, "4.7.1", defaultText(ActionTempfail), nil
	case phase == sdk.PhaseConnect:
		return 554, "5.7.1", defaultText(ActionReject), nil
	case phase == sdk.PhaseRcpt:
		return 550, "5.7.1", "Recipient rejected by policy", nil
	}
	return 550, "5.7.1", defaultText(ActionReject), nil
}

// RestsOnFailedLookup reports whether rule's condition may have matched
// only because the client's hostname lookup failed, as env says it did:
// it reads conn.hostname (which is then ""), or the result of a stage
// whose when: does (that stage ran, or was skipped, because of the ""),
// and reads no conn.hostname_error to tell the two apart. A permanent
// refusal on such a match would be DNS trouble answered with a 5xx
// (CONTRACT.md "On the wire"); Postfix's reject_unknown_* answer 450
// whenever the lookup failed for a temporary reason. A rule, or a stage's
// when:, that reads conn.hostname_error has decided for itself.
func (s *Set) RestsOnFailedLookup(rule *Rule, env *Env) bool {
	return env.Conn.HostnameError != "" && rule.When != nil && s.restsOnHostname(rule.When, map[*Stage]bool{})
}

// restsOnHostname reports whether p reads conn.hostname, itself or
// through the stages whose results it reads, without reading
// conn.hostname_error. seen holds the stages already followed.
func (s *Set) restsOnHostname(p *Program, seen map[*Stage]bool) bool {
	if p.conn.fields["hostname_error"] {
		return false
	}
	if p.conn.reads("hostname") {
		return true
	}
	for _, st := range s.Stages {
		if st.When != nil && !seen[st] && p.readsResult(st.Name) {
			seen[st] = true
			if s.restsOnHostname(st.When, seen) {
				return true
			}
		}
	}
	return false
}
