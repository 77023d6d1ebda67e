package greylist

import (
	"context"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

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

// TestSweepAfterClockSetBack: the hourly sweep of the bbolt file goes on
// after the clock is set back. Timed from a last sweep in the future, it
// stopped until the clock got there again (a year, for a clock a year
// fast), and the file kept every expired record meanwhile.
func TestSweepAfterClockSetBack(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, boltEnv(t), c, nil)
	check := func(to string) {
		t.Helper()
		if _, err := s.Check(context.Background(), rcpt("192.0.2.1", "a@x.example", to)); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		done := s.swept
		s.mu.Unlock()
		if done != nil {
			<-done
		}
	}
	c.advance(365 * 24 * time.Hour)
	check("fast@example.test") // sweeps, a year ahead
	c.advance(-365 * 24 * time.Hour)
	check("old@example.test")
	c.advance(49 * time.Hour) // old's record has expired
	check("new@example.test")
	key := tripletKey("192.0.2.0/24", "a@x.example", "old@example.test")
	s.store.(*BoltStore).db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucket).Get([]byte(key)) != nil {
			t.Error("no sweep since the clock was set back: the expired record is still in the file")
		}
		return nil
	})
}
