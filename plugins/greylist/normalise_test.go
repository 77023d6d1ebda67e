package greylist

import (
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestAutoAllowRenewed: an auto-allowed client that keeps sending stays
// allowed; pass_lifetime counts from its last use, as for a triplet, so
// a busy sender is not greylisted again every pass_lifetime.
func TestAutoAllowRenewed(t *testing.T) { eachBackend(t, testAutoAllowRenewed) }

func testAutoAllowRenewed(t *testing.T, fresh func(t testing.TB) sdk.Env) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, fresh(t), c, map[string]any{"auto_allow_after": 1, "pass_lifetime": "10d"})
	steps := []step{
		{"first", 0, rcpt("192.0.2.1", "a@x.example", "b@example.test"), sdk.VerdictFail, "greylist", "300"},
		{"passed", 5 * time.Minute, rcpt("192.0.2.1", "a@x.example", "b@example.test"), sdk.VerdictPass, "passed", ""},
	}
	for day := 1; day <= 15; day++ {
		steps = append(steps, step{"new triplet, day " + string(rune('a'+day)), 24 * time.Hour,
			rcpt("192.0.2.2", "a@x.example", "new"+string(rune('a'+day))+"@example.test"), sdk.VerdictPass, "auto_allow", ""})
	}
	steps = append(steps, step{"forgotten after a quiet pass_lifetime", 10 * 24 * time.Hour,
		rcpt("192.0.2.2", "a@x.example", "z@example.test"), sdk.VerdictFail, "greylist", "300"})
	run(t, s, c, steps)
}

// TestSenderTags: senders whose local part carries a per-message or
// per-day tag (BATV, SRS, VERP, subaddress) are one sender: the retry,
// with a new tag, passes instead of being greylisted forever.
func TestSenderTags(t *testing.T) { eachBackend(t, testSenderTags) }

func testSenderTags(t *testing.T, fresh func(t testing.TB) sdk.Env) {
	tests := []struct{ name, first, retry string }{
		{"BATV prvs", "prvs=1234abcdef=alice@sender.example", "prvs=1235fedcba=alice@sender.example"},
		{"BATV upper case", "PRVS=1234ABCDEF=Alice@Sender.example", "prvs=1235fedcba=alice@sender.example"},
		{"Microsoft BATV", "msprvs1=18092Bvj2YNXs=bounces-123@sender.example", "msprvs1=18093aBcdEFgH=bounces-123@sender.example"},
		{"SRS0", "SRS0=HHH1=TT=orig.example=alice@fwd.example", "SRS0=hhh2=tu=orig.example=alice@fwd.example"},
		{"SRS1", "SRS1=HHH1=fwd1.example==HHH2=TT=orig.example=alice@fwd2.example", "SRS1=xxx1=fwd1.example==xxx2=tu=orig.example=alice@fwd2.example"},
		{"subaddress VERP", "bounces+1234-abcd=example.test@lists.example", "bounces+5678-ef01=example.test@lists.example"},
		{"numeric VERP", "bounce-20260101-4711@news.example", "bounce-20260102-4712@news.example"},
		{"null sender", "", "<>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{time.Unix(1_800_000_000, 0)}
			s := newStage(t, fresh(t), c, map[string]any{"auto_allow_after": 0})
			run(t, s, c, []step{
				{"first", 0, rcpt("192.0.2.1", tc.first, "bob@example.test"), sdk.VerdictFail, "greylist", "300"},
				{"retry with a new tag", 5 * time.Minute, rcpt("192.0.2.1", tc.retry, "bob@example.test"), sdk.VerdictPass, "passed", ""},
			})
		})
	}
	// Tags are stripped, the sender is not: other users and domains stay apart.
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, fresh(t), c, map[string]any{"auto_allow_after": 0})
	run(t, s, c, []step{
		{"alice", 0, rcpt("192.0.2.1", "prvs=1234abcdef=alice@sender.example", "bob@example.test"), sdk.VerdictFail, "greylist", "300"},
		{"other user", 5 * time.Minute, rcpt("192.0.2.1", "prvs=1234abcdef=carol@sender.example", "bob@example.test"), sdk.VerdictFail, "greylist", "300"},
		{"other domain", 0, rcpt("192.0.2.1", "alice@other.example", "bob@example.test"), sdk.VerdictFail, "greylist", "300"},
		{"IPv4-mapped IPv6 is its IPv4 /24", 0, rcpt("::ffff:192.0.2.77", "alice@sender.example", "bob@example.test"), sdk.VerdictPass, "passed", ""},
	})
}
