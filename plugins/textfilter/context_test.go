package textfilter

import (
	"context"
	"errors"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestCheckStopsWhenContextEnds: a call whose context ended (the gateway
// gave up on it at the stage's timeout) returns the context's error
// instead of walking and matching the message: Check ignored its context,
// and each abandoned 20 MB message went on taking 1.7 s of the plugin's
// one CPU from the calls still waiting for an answer.
func TestCheckStopsWhenContextEnds(t *testing.T) {
	st := NewText()
	configure(t, st, "testdata", listConfig1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := st.Check(ctx, &sdk.Request{Phase: sdk.PhaseData, Message: message(t, "sjis_mislabelled")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Check: %v, want the context's error", err)
	}

	// Matching, the bulk of the work, stops between texts too.
	if _, _, err := st.(*Stage).set.Load().match(ctx, []string{"subject", "body"}); !errors.Is(err, context.Canceled) {
		t.Errorf("match: %v, want the context's error", err)
	}
}
