package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"

	"github.com/portcullis-mta/portcullis/core/smtperr"
	"github.com/portcullis-mta/portcullis/rules"
	"github.com/portcullis-mta/portcullis/sdk"
)

// applyRules runs the phase's rules in order: tag, add_header, redirect and
// learn_* record their effect and go on; the first other match decides.
func (r *Engine) applyRules(phase sdk.Phase, env *rules.Env, d *Decision) error {
	for rule, err := range r.set.Matches(phase, env) {
		if err != nil {
			return smtperr.Wrap(err, 451, "4.3.0", "Temporary local problem, try again later")
		}
		if !rules.Terminal(rule.Action) {
			if err := apply(rule, env, d); err != nil {
				return smtperr.Wrap(fmt.Errorf("rule %q: %w", rule.Name, err), 451, "4.3.0", "Temporary local problem, try again later")
			}
			continue
		}
		d.Action, d.Rule, d.Reason = Action(rule.Action), rule.Name, "rule "+rule.Name
		if rule.Action == rules.ActionReject || rule.Action == rules.ActionTempfail {
			code, enh, text, err := rule.RenderReply(phase, env)
			if err != nil {
				return smtperr.Wrap(fmt.Errorf("rule %q reply: %w", rule.Name, err), 451, "4.3.0", "Temporary local problem, try again later")
			}
			d.Reply = &Reply{Code: code, Enhanced: enh, Text: text}
			if code >= 500 && r.set.RestsOnFailedLookup(rule, env) {
				d.Action, d.Reason = Tempfail, d.Reason+" (client hostname lookup failed: "+env.Conn.HostnameError+")"
				d.Reply = &Reply{Code: 451, Enhanced: "4.4.3", Text: "Temporary failure in client hostname lookup"}
			}
		}
		return nil
	}
	return nil
}

// apply records the effect of a rule that does not end the phase.
func apply(rule *rules.Rule, env *rules.Env, d *Decision) error {
	d.applied = append(d.applied, string(rule.Action)+":"+rule.Name)
	switch rule.Action {
	case rules.ActionTag, rules.ActionAddHeader:
		if rule.Header != nil {
			v, err := rule.Header.Value.Render(env)
			if err != nil {
				return err
			}
			d.Headers = append(d.Headers, sdk.HeaderEdit{Op: sdk.HeaderAdd, Name: rule.Header.Name, Value: v})
		}
		addPrefix(d, rule.SubjectPrefix)
		if rule.Action == rules.ActionTag {
			d.Tags = append(d.Tags, "tag:"+rule.Name)
		}
	case rules.ActionRedirect:
		d.Redirect = append([]string(nil), rule.Recipients...)
	case rules.ActionLearnSpam:
		d.Tags = append(d.Tags, "learn:spam")
	case rules.ActionLearnHam:
		d.Tags = append(d.Tags, "learn:ham")
	}
	return nil
}

// addPrefix adds a tag's subject prefix to the decision's. Each prefix
// gets one space after it, as the README says of subject_prefix: two tags
// "[SPAM]" and "[BULK]" make "[SPAM] [BULK] subject", where they ran into
// "[SPAM][BULK]". A prefix already there (two rules with the same one) is
// not repeated; one that only holds another ("SPAM" after "[SPAM]") is
// no repeat and is added.
func addPrefix(d *Decision, p string) {
	word := strings.TrimSpace(p)
	if word == "" || slices.Contains(d.prefixes, word) {
		return
	}
	d.prefixes = append(d.prefixes, word)
	if d.SubjectPrefix != "" && !strings.HasSuffix(d.SubjectPrefix, " ") {
		d.SubjectPrefix += " "
	}
	d.SubjectPrefix += p
}

// logDecision logs a phase's outcome: at info when something was decided
// or at the end of the data phase, otherwise at debug.
func (r *Engine) logDecision(ctx context.Context, req *sdk.Request, d *Decision) {
	lvl := slog.LevelDebug
	if d.Action != Continue || req.Phase == sdk.PhaseData || len(d.Tags) > 0 || len(d.applied) > 0 {
		lvl = slog.LevelInfo
	}
	if !r.log.Enabled(context.Background(), lvl) {
		return
	}
	attrs := []any{"session", req.SessionID, "phase", req.Phase, "action", d.Action, "rule", d.Rule,
		"verdicts", verdicts(d.Results)}
	if req.QueueID != "" {
		attrs = append(attrs, "queue_id", req.QueueID)
	}
	if req.Phase == sdk.PhaseRcpt {
		attrs = append(attrs, "rcpt", req.Envelope.Rcpt)
	}
	if form := replyFormFrom(ctx); form != nil {
		if reply := form(d); reply != "" {
			attrs = append(attrs, "reply", reply)
		}
	} else if d.Reply != nil {
		attrs = append(attrs, "reply", fmt.Sprintf("%d %s %s", d.Reply.Code, d.Reply.Enhanced, d.Reply.Text))
	}
	if len(d.Tags) > 0 {
		attrs = append(attrs, "tags", strings.Join(d.Tags, ","))
	}
	if len(d.applied) > 0 {
		attrs = append(attrs, "applied", strings.Join(d.applied, ","))
	}
	r.log.Log(context.Background(), lvl, "decision", append(attrs, "reason", d.Reason)...)
}

// verdicts is "dnsbl=fail spf=pass", sorted by stage name.
func verdicts(results map[string]*sdk.Result) string {
	names := make([]string, 0, len(results))
	for n := range results {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + string(results[n].Verdict)
	}
	return strings.Join(parts, " ")
}
