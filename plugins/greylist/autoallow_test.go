package greylist

import (
	"fmt"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

func TestAutoAllowCountsOccasions(t *testing.T) { eachBackend(t, testAutoAllowCountsOccasions) }

// testAutoAllowCountsOccasions: auto_allow_after counts the occasions on
// which a client network retried properly, at most one an hour (as
// postgrey's --auto-whitelist-clients), not the triplets passed. One
// message to five recipients, retried once, passed five triplets in a
// second, and with the default 5 that auto-allowed its whole /24 after a
// single retry.
func testAutoAllowCountsOccasions(t *testing.T, fresh func(t testing.TB) sdk.Env) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, fresh(t), c, nil) // auto_allow_after: 5
	to := func(i, j int) *sdk.Request {
		return rcpt("192.0.2.1", fmt.Sprintf("news%d@sender.example", i), fmt.Sprintf("u%d@example.test", j))
	}
	stranger := rcpt("192.0.2.9", "x@other.example", "z@example.test")
	var steps []step
	for j := range 5 {
		steps = append(steps, step{fmt.Sprintf("message 1, rcpt %d", j), 0, to(1, j), sdk.VerdictFail, "greylist", "300"})
	}
	for j := range 5 {
		wait := 5 * time.Minute
		if j > 0 {
			wait = time.Second
		}
		steps = append(steps, step{fmt.Sprintf("message 1 retried, rcpt %d", j), wait, to(1, j), sdk.VerdictPass, "passed", ""})
	}
	run(t, s, c, steps)
	// Another message in the same hour is not another occasion.
	run(t, s, c, []step{
		{"message 2", 10 * time.Minute, to(2, 0), sdk.VerdictFail, "greylist", "300"},
		{"message 2 retried", 5 * time.Minute, to(2, 0), sdk.VerdictPass, "passed", ""},
		{"one retried message to five recipients is one occasion, not five", 0, stranger, sdk.VerdictFail, "greylist", "300"},
	})
	// Three more occasions, an hour apart or more: four in all.
	for i := 3; i <= 5; i++ {
		run(t, s, c, []step{
			{fmt.Sprintf("message %d", i), time.Hour, to(i, 0), sdk.VerdictFail, "greylist", "300"},
			{fmt.Sprintf("message %d retried", i), 5 * time.Minute, to(i, 0), sdk.VerdictPass, "passed", ""},
		})
	}
	run(t, s, c, []step{
		{"four occasions", 0, rcpt("192.0.2.9", "y@other.example", "z@example.test"), sdk.VerdictFail, "greylist", "300"},
		{"message 6", time.Hour, to(6, 0), sdk.VerdictFail, "greylist", "300"},
		{"message 6 retried: the fifth occasion", 5 * time.Minute, to(6, 0), sdk.VerdictPass, "passed", ""},
		{"auto-allowed after five", 0, rcpt("192.0.2.9", "w@other.example", "z@example.test"), sdk.VerdictPass, "auto_allow", ""},
	})
}
