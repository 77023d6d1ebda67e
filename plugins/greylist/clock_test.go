package greylist

import (
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestClockSetBack: a triplet first seen while the clock ran ahead (a
// host set a day fast, then corrected) is not deferred until the clock
// catches up with its first sighting: the retry after the correction
// starts the triplet over, and the sender's next retry after the delay
// passes. Deferred until the clock caught up, a sender whose queue gives
// up before then (a year ahead, say) would never get through.
func TestClockSetBack(t *testing.T) { eachBackend(t, testClockSetBack) }

func testClockSetBack(t *testing.T, fresh func(t testing.TB) sdk.Env) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, fresh(t), c, map[string]any{"auto_allow_after": 0})
	a := rcpt("192.0.2.1", "a@x.example", "b@example.test")
	dry := rcpt("192.0.2.1", "a@x.example", "b@example.test")
	dry.DryRun = true
	run(t, s, c, []step{
		{"first, clock a day fast", 0, a, sdk.VerdictFail, "greylist", "300"},
		{"dry run after the clock was set back", -24*time.Hour + 10*time.Minute, dry, sdk.VerdictFail, "greylist", "300"},
		{"retry after the clock was set back", 0, a, sdk.VerdictFail, "greylist", "300"},
		{"next retry after the delay", 5 * time.Minute, a, sdk.VerdictPass, "passed", ""},
	})
}
