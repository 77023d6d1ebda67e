package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/core/smtpd"
	"github.com/portcullis-mta/portcullis/sdk"
)

// scanReport is what `portcullis scan` prints; its JSON form is the
// machine interface (--json), so its field names are kept stable.
type scanReport struct {
	Message       string                  `json:"message"`
	Phases        []phaseReport           `json:"phases"`
	Stages        map[string]*stageReport `json:"stages"`
	Action        string                  `json:"action"` // accept | reject | tempfail | discard | quarantine
	Rule          string                  `json:"rule,omitempty"`
	Reply         string                  `json:"reply,omitempty"`
	Reason        string                  `json:"reason,omitempty"`
	Headers       []headerReport          `json:"headers,omitempty"`
	SubjectPrefix string                  `json:"subject_prefix,omitempty"`
	Redirect      []string                `json:"redirect,omitempty"`
	Tags          []string                `json:"tags,omitempty"`
}

// headerReport is a header edit the session would apply.
type headerReport struct {
	Op    sdk.HeaderOp `json:"op"` // add | remove
	Name  string       `json:"name"`
	Value string       `json:"value,omitempty"`
}

// phaseReport is one phase's decision.
type phaseReport struct {
	Phase  sdk.Phase `json:"phase"`
	Rcpt   string    `json:"rcpt,omitempty"`
	Action string    `json:"action"`
	Rule   string    `json:"rule,omitempty"`
	Reply  string    `json:"reply,omitempty"`
}

// stageReport is one stage's result, at the phase it ran last.
type stageReport struct {
	Phase   sdk.Phase         `json:"phase"`
	Verdict sdk.Verdict       `json:"verdict"`
	Score   float64           `json:"score"`
	Tags    []string          `json:"tags,omitempty"`
	Attrs   map[string]string `json:"attrs,omitempty"`
	Reason  string            `json:"reason,omitempty"`
}

func (r *scanReport) addPhase(eng *pipeline.Engine, req *sdk.Request, d *pipeline.Decision) {
	pr := phaseReport{Phase: req.Phase, Action: string(d.Action), Rule: d.Rule, Reply: replyText(d.Reply)}
	if req.Phase == sdk.PhaseRcpt {
		pr.Rcpt = req.Envelope.Rcpt
	}
	r.Phases = append(r.Phases, pr)
	for _, name := range eng.Stages(req.Phase) {
		if res := d.Results[name]; res != nil {
			r.Stages[name] = &stageReport{Phase: req.Phase, Verdict: res.Verdict, Score: res.Score,
				Tags: res.Tags, Attrs: res.Attrs, Reason: res.Reason}
		}
	}
}

// final records the deciding phase's outcome; Continue after the data
// phase is accept (pipeline.Continue).
func (r *scanReport) final(d *pipeline.Decision) *scanReport {
	if d == nil {
		r.Action = string(pipeline.Accept)
		return r
	}
	r.Action, r.Rule, r.Reply, r.Reason = string(d.Action), d.Rule, replyText(d.Reply), d.Reason
	if d.Action == pipeline.Continue {
		r.Action = string(pipeline.Accept)
	}
	for _, h := range d.Headers {
		r.Headers = append(r.Headers, headerReport{h.Op, h.Name, h.Value})
	}
	r.SubjectPrefix, r.Redirect, r.Tags = d.SubjectPrefix, d.Redirect, d.Tags
	return r
}

// replyText is a rule's reply as a session sends it to a client that did
// not ask for SMTPUTF8: ASCII, cut to a reply line.
func replyText(r *pipeline.Reply) string { return smtpd.WireReply(r, false) }

func (r *scanReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// resultFields are the names a stage's line gives the result's own fields:
// an attribute of one of these names is printed as attrs.NAME, so that
// the line never holds two reason= with different meanings.
var resultFields = map[string]bool{"score": true, "tags": true, "reason": true}

func (r *scanReport) writeText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "message: %s\n", r.Message)
	for _, name := range slices.Sorted(maps.Keys(r.Stages)) {
		s := r.Stages[name]
		fmt.Fprintf(&b, "stage %s (%s): %s score=%g", name, s.Phase, s.Verdict, s.Score)
		if len(s.Tags) > 0 {
			fmt.Fprintf(&b, " tags=%s", strings.Join(s.Tags, ","))
		}
		for _, k := range slices.Sorted(maps.Keys(s.Attrs)) {
			name := k
			if resultFields[k] { // dnsbl's attrs.reason beside the result's reason
				name = "attrs." + k
			}
			fmt.Fprintf(&b, " %s=%q", name, s.Attrs[k])
		}
		if s.Reason != "" {
			fmt.Fprintf(&b, " reason=%q", s.Reason)
		}
		b.WriteByte('\n')
	}
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "phase %s", p.Phase)
		if p.Rcpt != "" {
			fmt.Fprintf(&b, " <%s>", p.Rcpt)
		}
		fmt.Fprintf(&b, ": %s", p.Action)
		if p.Rule != "" {
			fmt.Fprintf(&b, " (rule %s)", p.Rule)
		}
		if p.Reply != "" {
			fmt.Fprintf(&b, " %q", p.Reply)
		}
		b.WriteByte('\n')
	}
	for _, h := range r.Headers {
		if h.Op == sdk.HeaderRemove {
			fmt.Fprintf(&b, "header: remove %s\n", h.Name)
		} else {
			fmt.Fprintf(&b, "header: add %s: %s\n", h.Name, h.Value)
		}
	}
	if r.SubjectPrefix != "" {
		fmt.Fprintf(&b, "subject prefix: %q\n", r.SubjectPrefix)
	}
	if len(r.Redirect) > 0 {
		fmt.Fprintf(&b, "redirect: %s\n", strings.Join(r.Redirect, ", "))
	}
	if len(r.Tags) > 0 {
		fmt.Fprintf(&b, "tags: %s\n", strings.Join(r.Tags, ", "))
	}
	fmt.Fprintf(&b, "action: %s", r.Action)
	if r.Rule != "" {
		fmt.Fprintf(&b, " (rule %s)", r.Rule)
	}
	if r.Reply != "" {
		fmt.Fprintf(&b, " %s", r.Reply)
	}
	b.WriteByte('\n')
	if r.Reason != "" && r.Rule == "" {
		// No rule decided: a failure did (a rule that erred at run time,
		// a stage's on_error), and only the reason says which.
		fmt.Fprintf(&b, "reason: %s\n", r.Reason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
