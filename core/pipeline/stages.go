package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-mta/portcullis/core/metrics"
	"github.com/portcullis-mta/portcullis/rules"
	"github.com/portcullis-mta/portcullis/sdk"
)

// ErrRemoved is what a StageClient returns (wrapped) when a reload has
// removed the stage, or its call in this phase, while a session that began
// under the old rules still holds it. The session's Engine then treats the
// stage as skipped (verdict none), as the new rules do, instead of applying
// its on_error: a reload that drops a stage must not defer or reject the
// mail of the sessions in progress.
var ErrRemoved = errors.New("stage removed by a reload")

// outcome is one stage call.
type outcome struct {
	res     *sdk.Result
	err     error
	skipped bool
	removed bool // skipped because a reload removed the stage
	timeout bool
	took    time.Duration
}

// runStages calls the phase's stages in parallel, each under its own
// timeout, and records their results in d and env. It returns the fault
// decision when a failed stage's on_error is tempfail or reject.
func (r *Engine) runStages(ctx context.Context, req *sdk.Request, env *rules.Env, d *Decision) *Decision {
	stages := r.phases[req.Phase]
	if len(stages) == 0 {
		return nil
	}
	outs := make([]outcome, len(stages))
	var run []int
	for i, st := range stages {
		if st.When == nil {
			run = append(run, i)
			continue
		}
		switch ok, err := st.When.Bool(env); {
		case err != nil:
			outs[i] = outcome{err: fmt.Errorf("when: %w", err)}
		case !ok:
			outs[i] = outcome{skipped: true}
		default:
			run = append(run, i)
		}
	}
	var wg sync.WaitGroup
	for k, i := range run {
		if k == len(run)-1 { // the last one runs here: one goroutine fewer per phase
			outs[i] = call(ctx, stages[i], req)
			break
		}
		wg.Go(func() { outs[i] = call(ctx, stages[i], req) })
	}
	wg.Wait()
	var failed *stage // the fault that decides: a tempfail one wins over a reject one
	var failErr error
	for i, st := range stages {
		res := r.record(req, st, outs[i])
		d.Results[st.Name] = res
		env.SetResult(st.Name, res)
		d.Headers = append(d.Headers, res.Headers...)
		if outs[i].err == nil || st.OnError == rules.OnErrorContinue {
			continue
		}
		if failed == nil || failed.OnError == rules.OnErrorReject && st.OnError == rules.OnErrorTempfail {
			failed, failErr = st, outs[i].err
		}
	}
	if failed == nil {
		return nil
	}
	return faultDecision(failed, failErr, d)
}

// call runs one stage under its timeout. It returns at the deadline even
// when the client does not honour its context, and turns a panic into an
// error, so one bad stage cannot hang or crash the session.
func call(ctx context.Context, st *stage, req *sdk.Request) outcome {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, st.Timeout)
	defer cancel()
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{err: fmt.Errorf("stage panicked: %v", p)}
			}
		}()
		res, err := st.client.Check(ctx, req)
		if errors.Is(err, ErrRemoved) {
			done <- outcome{skipped: true, removed: true}
			return
		}
		if err == nil {
			err = checkResult(res)
		}
		done <- outcome{res: res, err: err}
	}()
	select {
	case o := <-done:
		o.took = time.Since(start)
		if o.err != nil && ctx.Err() == context.DeadlineExceeded {
			o.err, o.timeout = fmt.Errorf("timeout after %s: %w", st.Timeout, o.err), true
		}
		return o
	case <-ctx.Done():
		return outcome{err: fmt.Errorf("timeout after %s: %w", st.Timeout, ctx.Err()), timeout: true, took: time.Since(start)}
	}
}

// checkResult refuses a result the rules cannot trust: rules compare
// verdicts and scores, and a verdict they do not know or a NaN score
// (false in every comparison) would let a message through unchecked; nor
// may it exceed sdk.MaxResultBytes (sdk.Result.Validate).
func checkResult(res *sdk.Result) error {
	if res == nil {
		return errors.New("stage returned no result")
	}
	if err := res.Validate(); err != nil {
		return fmt.Errorf("stage %w", err)
	}
	return nil
}

// record turns an outcome into the result rules see and logs the call.
func (r *Engine) record(req *sdk.Request, st *stage, o outcome) *sdk.Result {
	res := o.res
	switch {
	case o.removed:
		res = &sdk.Result{Verdict: sdk.VerdictNone, Reason: "skipped: removed by a reload"}
	case o.skipped:
		res = &sdk.Result{Verdict: sdk.VerdictNone, Reason: "skipped by when"}
	case o.err != nil:
		// Every error reason names its stage, as the plugin host's do
		// ("stage NAME: ..."): a timeout or a refused result too.
		reason := o.err.Error()
		if !strings.HasPrefix(reason, "stage "+st.Name+": ") {
			reason = "stage " + st.Name + ": " + reason
		}
		res = &sdk.Result{Verdict: sdk.VerdictError, Reason: reason}
	case res.Verdict == "":
		res.Verdict = sdk.VerdictNone
	}
	countCall(st.Name, o, res.Verdict)
	if req.Phase != sdk.PhaseData && len(res.Headers) > 0 {
		// Header edits apply to a message; there is none yet. The plugin
		// author expects them to apply: say so, once per config, rather
		// than drop them without a word.
		if st.droppedEdits.CompareAndSwap(false, true) {
			r.log.Warn("header edits dropped: a stage edits headers only in the data phase", "session", req.SessionID,
				"phase", req.Phase, "stage", st.Name, "edits", len(res.Headers))
		}
		res.Headers = nil
	}
	res.Headers = r.keepTrace(req, st, res.Headers)
	lvl := slog.LevelDebug
	switch {
	case o.err != nil:
		lvl = slog.LevelWarn
	case o.removed:
		lvl = slog.LevelInfo // rare, and it changes what the session's rules saw
	}
	if r.log.Enabled(context.Background(), lvl) {
		attrs := []any{"session", req.SessionID, "phase", req.Phase, "stage", st.Name, "verdict", res.Verdict,
			"score", res.Score, "reason", res.Reason, "took", o.took.Round(time.Microsecond).String(), "skipped", o.skipped}
		if req.QueueID != "" {
			attrs = append(attrs, "queue_id", req.QueueID)
		}
		r.log.Log(context.Background(), lvl, "stage", attrs...)
	}
	return res
}

// faultDecision applies a failed stage's on_error.
func faultDecision(st *stage, err error, d *Decision) *Decision {
	f := *d
	f.Rule = ""
	// The plugin host's errors start with "stage NAME: " already.
	f.Reason = fmt.Sprintf("stage %s failed: %s", st.Name, strings.TrimPrefix(err.Error(), "stage "+st.Name+": "))
	switch st.OnError {
	case rules.OnErrorTempfail:
		f.Action = Tempfail
		f.Reply = &Reply{Code: 451, Enhanced: "4.3.0", Text: "Temporary failure in stage " + st.Name}
	case rules.OnErrorReject:
		f.Action = Reject
		f.Reply = &Reply{Code: 554, Enhanced: "5.7.1", Text: "Rejected by policy"}
	default:
		return nil
	}
	return &f
}

// countCall records a stage call that ran (a skipped one did not).
func countCall(stage string, o outcome, v sdk.Verdict) {
	switch {
	case o.skipped:
		return
	case o.timeout:
		metrics.Active().StageCall(stage, "timeout", o.took)
	case o.err != nil:
		metrics.Active().StageCall(stage, "error", o.took)
	default:
		metrics.Active().StageCall(stage, string(v), o.took)
	}
}
