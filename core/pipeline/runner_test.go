package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/portcullis-mta/portcullis/rules"
	"github.com/portcullis-mta/portcullis/sdk"
)

// fake is an in-process stage.
type fake struct {
	phases []sdk.Phase
	calls  atomic.Int32
	check  func(ctx context.Context, req *sdk.Request) (*sdk.Result, error)
}

func (f *fake) Info() sdk.Info { return sdk.Info{Name: "fake", Phases: f.phases} }

func (f *fake) Check(ctx context.Context, req *sdk.Request) (*sdk.Result, error) {
	f.calls.Add(1)
	return f.check(ctx, req)
}

func verdict(v sdk.Verdict) func(context.Context, *sdk.Request) (*sdk.Result, error) {
	return func(context.Context, *sdk.Request) (*sdk.Result, error) { return &sdk.Result{Verdict: v}, nil }
}

func fails(context.Context, *sdk.Request) (*sdk.Result, error) {
	return nil, errors.New("plugin exited")
}

// hangs waits for its deadline, as a stuck plugin would.
func hangs(ctx context.Context, _ *sdk.Request) (*sdk.Result, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func newEngine(t testing.TB, text string, clients map[string]StageClient) *Engine {
	t.Helper()
	set, err := rules.Parse("rules.yaml", []byte(text))
	if err != nil {
		t.Fatalf("rules: %v", err)
	}
	e, err := New(set, clients, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func request(phase sdk.Phase) *sdk.Request {
	req := &sdk.Request{Phase: phase, SessionID: "s1",
		Conn:     sdk.Conn{IP: "192.0.2.7", HELO: "client.example"},
		Envelope: sdk.Envelope{From: "a@sender.example", Rcpts: []string{"b@example.test"}}}
	if phase == sdk.PhaseData {
		req.QueueID = "Q1"
		req.Message = sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: "hello"}}, []byte("Subject: hello\r\n\r\nhi\r\n"))
	}
	return req
}

func TestStagesRunInParallel(t *testing.T) {
	const n = 4
	var started sync.WaitGroup
	started.Add(n)
	barrier := func(ctx context.Context, _ *sdk.Request) (*sdk.Result, error) {
		started.Done()
		done := make(chan struct{})
		go func() { started.Wait(); close(done) }()
		select { // every stage must be running before any can finish
		case <-done:
			return &sdk.Result{Verdict: sdk.VerdictPass}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	clients := map[string]StageClient{}
	var text strings.Builder
	text.WriteString("stages:\n")
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		clients[name] = &fake{phases: []sdk.Phase{sdk.PhaseConnect}, check: barrier}
		fmt.Fprintf(&text, "  - {name: %s, plugin: x, timeout: 10s}\n", name)
	}
	e := newEngine(t, text.String(), clients)
	d, err := e.Run(context.Background(), request(sdk.PhaseConnect), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range d.Results {
		if r.Verdict != sdk.VerdictPass {
			t.Errorf("%s: %s (%s): stages did not run in parallel", name, r.Verdict, r.Reason)
		}
	}
	if d.Action != Continue || len(d.Results) != n {
		t.Errorf("decision %+v", d)
	}
}

func TestStageFaults(t *testing.T) {
	ignoresCtx := make(chan struct{})
	defer close(ignoresCtx)
	tests := []struct {
		name     string
		check    func(context.Context, *sdk.Request) (*sdk.Result, error)
		onError  string
		action   Action
		reply    string
		rule     string
		wantCall bool
	}{
		{"timeout tempfail", hangs, "tempfail", Tempfail, "451 4.3.0 Temporary failure in stage st", "", true},
		{"ignores its context", func(context.Context, *sdk.Request) (*sdk.Result, error) { <-ignoresCtx; return nil, nil }, "tempfail", Tempfail, "451 4.3.0 Temporary failure in stage st", "", true},
		{"error tempfail", fails, "tempfail", Tempfail, "451 4.3.0 Temporary failure in stage st", "", true},
		{"error reject", fails, "reject", Reject, "554 5.7.1 Rejected by policy", "", true},
		{"error continue: rules see error", fails, "continue", Reject, "550 5.7.1 Checks unavailable", "on_error", true},
		{"timeout continue", hangs, "continue", Reject, "550 5.7.1 Checks unavailable", "on_error", true},
		{"panic", func(context.Context, *sdk.Request) (*sdk.Result, error) { panic("boom") }, "tempfail", Tempfail, "451 4.3.0 Temporary failure in stage st", "", true},
		{"nil result", func(context.Context, *sdk.Request) (*sdk.Result, error) { return nil, nil }, "reject", Reject, "554 5.7.1 Rejected by policy", "", true},
		{"pass", verdict(sdk.VerdictPass), "tempfail", Continue, "", "", true},
		// A session from before a reload that dropped the stage: skipped,
		// as the new rules do, not its on_error.
		{"removed by a reload", func(context.Context, *sdk.Request) (*sdk.Result, error) {
			return nil, fmt.Errorf("stage st: %w", ErrRemoved)
		}, "reject", Continue, "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{phases: []sdk.Phase{sdk.PhaseMail}, check: tc.check}
			e := newEngine(t, fmt.Sprintf(`
stages: [{name: st, plugin: x, timeout: 50ms, on_error: %s}]
rules:
  - {name: on_error, when: 'results.st.verdict == "error"', action: reject, reply: '550 5.7.1 Checks unavailable'}
`, tc.onError), map[string]StageClient{"st": f})
			d, err := e.Run(context.Background(), request(sdk.PhaseMail), nil)
			if err != nil {
				t.Fatal(err)
			}
			if d.Action != tc.action || replyString(d.Reply) != tc.reply || d.Rule != tc.rule {
				t.Errorf("got %s %q rule %q, want %s %q rule %q (reason %s)", d.Action, replyString(d.Reply), d.Rule, tc.action, tc.reply, tc.rule, d.Reason)
			}
			if want := tc.action != Continue; (d.Results["st"].Verdict == sdk.VerdictError) != want {
				t.Errorf("verdict %s", d.Results["st"].Verdict)
			}
			// An error's reason names the stage, a timeout's and a refused
			// result's too.
			if r := d.Results["st"]; r.Verdict == sdk.VerdictError && !strings.HasPrefix(r.Reason, "stage st: ") {
				t.Errorf("reason %q does not name the stage", r.Reason)
			}
			if r := d.Results["st"]; tc.name == "removed by a reload" && (r.Verdict != sdk.VerdictNone || r.Reason != "skipped: removed by a reload") {
				t.Errorf("result %+v, want verdict none, skipped", r)
			}
		})
	}
}

func replyString(r *Reply) string {
	if r == nil {
		return ""
	}
	return fmt.Sprintf("%d %s %s", r.Code, r.Enhanced, r.Text)
}

func TestTempfailFaultWinsOverReject(t *testing.T) {
	e := newEngine(t, `
stages:
  - {name: a, plugin: x, on_error: reject}
  - {name: b, plugin: x, on_error: tempfail}
`, map[string]StageClient{"a": &fake{phases: []sdk.Phase{sdk.PhaseRcpt}, check: fails}, "b": &fake{phases: []sdk.Phase{sdk.PhaseRcpt}, check: fails}})
	d, err := e.Run(context.Background(), request(sdk.PhaseRcpt), nil)
	if err != nil || d.Action != Tempfail || d.Reply.Code != 451 {
		t.Fatalf("%+v %v", d, err)
	}
}

func TestWhenSkipsStage(t *testing.T) {
	f := &fake{phases: []sdk.Phase{sdk.PhaseConnect}, check: verdict(sdk.VerdictFail)}
	e := newEngine(t, `
stages: [{name: dnsbl, plugin: x, when: '!cidr(conn.ip, "192.0.2.0/24")'}]
rules:
  - {name: skipped, when: 'results.dnsbl.verdict == "none"', action: accept}
  - {name: listed, when: 'results.dnsbl.verdict == "fail"', action: reject}
`, map[string]StageClient{"dnsbl": f})
	for _, tc := range []struct {
		ip    string
		calls int32
		rule  string
	}{{"192.0.2.1", 0, "skipped"}, {"198.51.100.1", 1, "listed"}} {
		req := request(sdk.PhaseConnect)
		req.Conn.IP = tc.ip
		d, err := e.Run(context.Background(), req, nil)
		if err != nil || d.Rule != tc.rule {
			t.Errorf("%s: rule %q, %v; want %q", tc.ip, d.Rule, err, tc.rule)
		}
		if f.calls.Load() != tc.calls {
			t.Errorf("%s: %d calls, want %d", tc.ip, f.calls.Load(), tc.calls)
		}
	}
}

func TestRuleOrderAndAccumulation(t *testing.T) {
	spam := &fake{phases: []sdk.Phase{sdk.PhaseData}, check: func(context.Context, *sdk.Request) (*sdk.Result, error) {
		return &sdk.Result{Verdict: sdk.VerdictFail, Score: 9, Headers: []sdk.HeaderEdit{{Op: sdk.HeaderAdd, Name: "X-Spam-Score", Value: "9"}}}, nil
	}}
	av := &fake{phases: []sdk.Phase{sdk.PhaseData}, check: func(context.Context, *sdk.Request) (*sdk.Result, error) {
		return &sdk.Result{Verdict: sdk.VerdictPass, Headers: []sdk.HeaderEdit{{Op: sdk.HeaderRemove, Name: "X-Virus"}}}, nil
	}}
	e := newEngine(t, `
stages: [{name: spam, plugin: x}, {name: av, plugin: x}]
rules:
  - {name: flag, when: 'results.spam.score > 5', action: tag, header: {name: X-Spam-Flag, value: 'YES ({{results.spam.score}})'}, subject_prefix: '[SPAM] '}
  - {name: mark, action: add_header, header: {name: X-Checked, value: 'by {{conn.helo}}'}}
  - {name: learn, when: 'results.spam.score > 8', action: learn_spam}
  - {name: copy, when: 'results.spam.score > 8', action: redirect, recipients: [spamtrap@example.test]}
  - {name: too_spammy, when: 'results.spam.score > 8', action: reject, reply: '550 5.7.1 Spam score {{results.spam.score}}'}
  - {name: never, action: quarantine}
`, map[string]StageClient{"spam": spam, "av": av})
	earlier := map[string]*sdk.Result{"old": {Verdict: sdk.VerdictPass}}
	d, err := e.Run(context.Background(), request(sdk.PhaseData), earlier)
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != Reject || d.Rule != "too_spammy" || replyString(d.Reply) != "550 5.7.1 Spam score 9" {
		t.Errorf("decision %s %s %q", d.Action, d.Rule, replyString(d.Reply))
	}
	want := []sdk.HeaderEdit{
		{Op: sdk.HeaderAdd, Name: "X-Spam-Score", Value: "9"}, {Op: sdk.HeaderRemove, Name: "X-Virus"},
		{Op: sdk.HeaderAdd, Name: "X-Spam-Flag", Value: "YES (9)"}, {Op: sdk.HeaderAdd, Name: "X-Checked", Value: "by client.example"},
	}
	if !reflect.DeepEqual(d.Headers, want) {
		t.Errorf("headers\n got %+v\nwant %+v", d.Headers, want)
	}
	if d.SubjectPrefix != "[SPAM] " || !reflect.DeepEqual(d.Redirect, []string{"spamtrap@example.test"}) {
		t.Errorf("prefix %q redirect %v", d.SubjectPrefix, d.Redirect)
	}
	if !reflect.DeepEqual(d.Tags, []string{"tag:flag", "learn:spam"}) {
		t.Errorf("tags %v", d.Tags)
	}
	if len(d.Results) != 3 || earlier["spam"] == nil || d.Results["old"].Verdict != sdk.VerdictPass {
		t.Errorf("results %v", verdicts(d.Results))
	}
}

// Header edits from a stage outside the data phase are dropped (there is
// no message yet), with one warning per config naming the stage: its
// author expected them to apply, and they used to vanish without a word.
func TestStageHeadersOnlyAtData(t *testing.T) {
	st := &fake{phases: []sdk.Phase{sdk.PhaseMail}, check: func(context.Context, *sdk.Request) (*sdk.Result, error) {
		return &sdk.Result{Verdict: sdk.VerdictPass, Headers: []sdk.HeaderEdit{{Op: sdk.HeaderAdd, Name: "X-A", Value: "1"}}}, nil
	}}
	set, err := rules.Parse("rules.yaml", []byte(`stages: [{name: st, plugin: x}]`))
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	var mu sync.Mutex
	e, err := New(set, map[string]StageClient{"st": st}, slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		d, err := e.Run(context.Background(), request(sdk.PhaseMail), nil)
		if err != nil || len(d.Headers) != 0 {
			t.Errorf("headers at mail: %v %v", d.Headers, err)
		}
	}
	want := `level=WARN msg="header edits dropped: a stage edits headers only in the data phase" session=s1 phase=mail stage=st edits=1`
	if got := strings.Count(logs.String(), want); got != 1 {
		t.Errorf("%d warnings %q, want 1:\n%s", got, want, logs.String())
	}
}

func TestWantsAndPhases(t *testing.T) {
	e := newEngine(t, `
stages: [{name: rdns, plugin: x}, {name: av, plugin: x}]
rules:
  - {name: helo, when: 'conn.helo == "localhost"', action: reject}
  - {name: virus, when: 'results.av.verdict == "fail"', action: reject}
`, map[string]StageClient{"rdns": &fake{phases: []sdk.Phase{sdk.PhaseConnect}}, "av": &fake{phases: []sdk.Phase{sdk.PhaseData}}})
	want := map[sdk.Phase]bool{"connect": true, "helo": true, "mail": false, "rcpt": false, "data": true}
	for ph, w := range want {
		if e.Wants(ph) != w {
			t.Errorf("Wants(%s) = %v", ph, !w)
		}
	}
	if got := e.Stages(sdk.PhaseData); !reflect.DeepEqual(got, []string{"av"}) {
		t.Errorf("Stages(data) = %v", got)
	}
}

func TestNewErrors(t *testing.T) {
	set, err := rules.Parse("r.yaml", []byte("stages: [{name: a, plugin: x}]\nrules: [{name: r, when: 'results.a.verdict == \"fail\"', action: accept, phase: connect}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(set, nil, nil); err == nil || !strings.Contains(err.Error(), `stage "a" has no loaded plugin`) {
		t.Errorf("missing client: %v", err)
	}
	_, err = New(set, map[string]StageClient{"a": &fake{phases: []sdk.Phase{sdk.PhaseData}}}, nil)
	var probs rules.Problems
	if !errors.As(err, &probs) || !strings.Contains(err.Error(), "phase connect is too early") {
		t.Errorf("bind: %v", err)
	}
}

func TestCancelledSession(t *testing.T) {
	e := newEngine(t, `stages: [{name: st, plugin: x}]`, map[string]StageClient{"st": &fake{phases: []sdk.Phase{sdk.PhaseHelo}, check: hangs}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Run(ctx, request(sdk.PhaseHelo), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v", err)
	}
}

func TestFactsAndLogging(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	set, err := rules.Parse("r.yaml", []byte(`
stages: [{name: st, plugin: x}]
rules: [{name: pregreet, when: 'conn.pregreet && mail.params.BODY == "8BITMIME"', action: reject, phase: mail}]`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(set, map[string]StageClient{"st": &fake{phases: []sdk.Phase{sdk.PhaseMail}, check: verdict(sdk.VerdictNeutral)}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithFacts(context.Background(), rules.Facts{Pregreet: true, MailParams: map[string]string{"BODY": "8BITMIME"}})
	d, err := e.Run(ctx, request(sdk.PhaseMail), nil)
	if err != nil || d.Rule != "pregreet" || replyString(d.Reply) != "550 5.7.1 Message rejected by policy" {
		t.Fatalf("%+v %v", d, err)
	}
	out := logs.String()
	for _, want := range []string{"level=DEBUG msg=stage session=s1", "stage=st verdict=neutral", "level=INFO msg=decision", `action=reject rule=pregreet verdicts="st=neutral"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestConcurrentSessions runs one Engine from many goroutines, as every
// session shares it; -race checks that nothing is written unguarded.
func TestConcurrentSessions(t *testing.T) {
	st := &fake{phases: []sdk.Phase{sdk.PhaseRcpt}, check: func(_ context.Context, req *sdk.Request) (*sdk.Result, error) {
		if strings.HasPrefix(req.Envelope.Rcpt, "bad") {
			return &sdk.Result{Verdict: sdk.VerdictFail, Tags: []string{"bad"}}, nil
		}
		return &sdk.Result{Verdict: sdk.VerdictPass}, nil
	}}
	e := newEngine(t, `
stages: [{name: st, plugin: x}]
rules:
  - {name: bad, when: 'has_tag(results.st, "bad") && regex(rcpt, "^bad[0-9]+@")', action: reject, reply: '550 5.1.1 <{{rcpt}}> refused'}
`, map[string]StageClient{"st": st})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 50 {
				req := request(sdk.PhaseRcpt)
				prefix := "good"
				if (i+j)%2 == 0 {
					prefix = "bad"
				}
				req.Envelope.Rcpt = fmt.Sprintf("%s%d@example.test", prefix, j)
				d, err := e.Run(context.Background(), req, map[string]*sdk.Result{})
				if err != nil {
					t.Error(err)
					return
				}
				if want := prefix == "bad"; (d.Action == Reject) != want || want && d.Reply.Text != "<"+req.Envelope.Rcpt+"> refused" {
					t.Errorf("%s: %s %+v", req.Envelope.Rcpt, d.Action, d.Reply)
				}
			}
		})
	}
	wg.Wait()
}

// Each subject_prefix gets one space after it (README): two tags make
// "[SPAM] [BULK]", not "[SPAM][BULK]"; the same prefix twice is added once,
// and one that a longer one holds ("SPAM" in "[SPAM]") is still added.
func TestSubjectPrefixes(t *testing.T) {
	e := newEngine(t, `
rules:
  - {name: a, phase: data, action: tag, subject_prefix: '[SPAM]'}
  - {name: b, phase: data, action: tag, subject_prefix: '[BULK] '}
  - {name: c, phase: data, action: tag, subject_prefix: '[SPAM]'}
  - {name: d, phase: data, action: tag, subject_prefix: 'SPAM'}
`, nil)
	d, err := e.Run(context.Background(), request(sdk.PhaseData), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[SPAM] [BULK] SPAM"; d.SubjectPrefix != want {
		t.Errorf("subject prefix %q, want %q", d.SubjectPrefix, want)
	}
}
