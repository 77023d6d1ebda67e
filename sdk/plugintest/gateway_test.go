package plugintest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// infoStage says what it is told to: an Info the gateway refuses at load.
type infoStage struct{ info sdk.Info }

func (s infoStage) Info() sdk.Info                                         { return s.info }
func (infoStage) Configure(context.Context, sdk.Env, map[string]any) error { return nil }
func (infoStage) Check(context.Context, *sdk.Request) (*sdk.Result, error) {
	return &sdk.Result{Verdict: sdk.VerdictPass}, nil
}

// fatalTB records a Fatalf where the test it wraps would stop.
type fatalTB struct {
	testing.TB
	fatal string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// A stage whose Info the gateway refuses ("plugin did not name itself",
// "asks for no phase") used to pass every plugintest test: Start never
// asked for Info, and Client.Info returned it unchecked. It fails now, in
// the gateway's words.
func TestStartRefusesInfoTheGatewayRefuses(t *testing.T) {
	tests := []struct {
		name string
		info sdk.Info
		want string // "": accepted
	}{
		{"good", sdk.Info{Name: "x", Phases: []sdk.Phase{sdk.PhaseRcpt}}, ""},
		{"no name", sdk.Info{Phases: []sdk.Phase{sdk.PhaseRcpt}}, "plugin did not name itself"},
		{"no phase", sdk.Info{Name: "x"}, "plugin x asks for no phase"},
		{"upper case phase", sdk.Info{Name: "x", Phases: []sdk.Phase{"DATA"}}, `unknown or repeated phase "DATA"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := &fatalTB{TB: t}
			done := make(chan *plugintest.Client)
			go func() {
				defer close(done)
				done <- plugintest.Start(tb, infoStage{tt.info})
			}()
			c := <-done
			if tt.want == "" {
				if tb.fatal != "" || c == nil {
					t.Fatalf("Start failed: %s", tb.fatal)
				}
				if _, err := c.Info(); err != nil {
					t.Fatalf("Info = %v", err)
				}
				return
			}
			if !strings.Contains(tb.fatal, tt.want) || !strings.Contains(tb.fatal, "would not load") {
				t.Fatalf("Start failed with %q, want it to say the gateway would not load it: %q", tb.fatal, tt.want)
			}
		})
	}
}

// blockStage returns only when its call's context is done.
type blockStage struct{ infoStage }

func (blockStage) Check(ctx context.Context, _ *sdk.Request) (*sdk.Result, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A call past its deadline said "context deadline exceeded: context
// deadline exceeded": gRPC's message repeated the error it wrapped.
func TestCheckPastDeadlineSaysItOnce(t *testing.T) {
	c := plugintest.Start(t, blockStage{infoStage{sdk.Info{Name: "b", Phases: []sdk.Phase{sdk.PhaseMail}}}})
	for _, name := range []string{"expired before the call", "expires during the call"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			if name == "expired before the call" {
				<-ctx.Done()
			}
			_, err := c.Check(ctx, &sdk.Request{Phase: sdk.PhaseMail})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Check = %v, want context.DeadlineExceeded", err)
			}
			if msg := err.Error(); strings.Count(msg, "deadline exceeded") != 1 {
				t.Errorf("Check's error says %q", msg)
			}
		})
	}
}

// editStage asks for a header edit at every phase.
type editStage struct{ infoStage }

func (editStage) Check(context.Context, *sdk.Request) (*sdk.Result, error) {
	return &sdk.Result{Verdict: sdk.VerdictPass, Headers: []sdk.HeaderEdit{{Op: sdk.HeaderAdd, Name: "X-Seen", Value: "yes"}}}, nil
}

// The gateway applies header edits at the data phase only and drops those
// of other phases; Check returned them, so a test of a stage that edited
// at rcpt passed and the gateway did nothing.
func TestCheckDropsHeaderEditsOutsideData(t *testing.T) {
	c := plugintest.Start(t, editStage{infoStage{sdk.Info{Name: "e", Phases: sdk.Phases}}})
	for _, ph := range sdk.Phases {
		req := &sdk.Request{Phase: ph}
		if ph == sdk.PhaseData {
			req.Message = plugintest.Message([]byte("Subject: x\r\n\r\nbody\r\n"))
		}
		res, err := c.Check(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(res.Headers), map[bool]int{true: 1, false: 0}[ph == sdk.PhaseData]; got != want {
			t.Errorf("phase %s: %d header edits, want %d (%v)", ph, got, want, res.Headers)
		}
	}
}
