package pipeline

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// A stage may not remove the trace fields (RFC 5321 4.4): those removals
// are dropped with a warning naming the stage, its other edits apply, and
// msgauth's removal of Authentication-Results (RFC 8601 5) goes through.
func TestStageMayNotRemoveTrace(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	edits := []sdk.HeaderEdit{
		{Op: sdk.HeaderRemove, Name: "X-Old"}, {Op: sdk.HeaderRemove, Name: "received"},
		{Op: sdk.HeaderAdd, Name: "X-New", Value: "1"}, {Op: sdk.HeaderRemove, Name: "Return-Path"},
		{Op: sdk.HeaderRemove, Name: "Authentication-Results"}, {Op: sdk.HeaderAdd, Name: "Received", Value: "from x"},
	}
	st := &fake{phases: []sdk.Phase{sdk.PhaseData}, check: func(context.Context, *sdk.Request) (*sdk.Result, error) {
		return &sdk.Result{Verdict: sdk.VerdictPass, Headers: edits}, nil
	}}
	e := newEngine(t, `stages: [{name: scrub, plugin: x}]`, map[string]StageClient{"scrub": st})
	e.log = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	d, err := e.Run(context.Background(), request(sdk.PhaseData), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []sdk.HeaderEdit{
		{Op: sdk.HeaderRemove, Name: "X-Old"}, {Op: sdk.HeaderAdd, Name: "X-New", Value: "1"},
		{Op: sdk.HeaderRemove, Name: "Authentication-Results"}, {Op: sdk.HeaderAdd, Name: "Received", Value: "from x"},
	}
	if !reflect.DeepEqual(d.Headers, want) {
		t.Errorf("headers\n got %+v\nwant %+v", d.Headers, want)
	}
	if len(edits) != 6 || edits[1].Name != "received" {
		t.Errorf("the stage's own result was changed: %+v", edits)
	}
	out := logs.String()
	for _, f := range []string{"received", "Return-Path"} {
		if !strings.Contains(out, `level=WARN msg="stage may not remove a trace field (RFC 5321 4.4): kept" session=s1 stage=scrub field=`+f+" queue_id=Q1") {
			t.Errorf("no warning for %s:\n%s", f, out)
		}
	}
}
