package greylist

import (
	"context"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

func TestReloadKeepsDeadlines(t *testing.T) { eachBackend(t, testReloadKeepsDeadlines) }

// testReloadKeepsDeadlines: a reload that lengthens the delay does not
// hold up the triplets already waiting. Judged by the delay after the
// reload, a triplet first seen under delay 5m and retry_window 48h, its
// record kept until 48h05m, retried as told after 5m and was told to retry
// 48h55m later: by then its record was gone, and the retry started over,
// for another 49h.
func testReloadKeepsDeadlines(t *testing.T, fresh func(t testing.TB) sdk.Env) {
	env := fresh(t)
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, env, c, map[string]any{"auto_allow_after": 0})
	a := rcpt("192.0.2.1", "a@x.example", "b@example.test")
	b := rcpt("192.0.2.1", "a@x.example", "c@example.test")
	run(t, s, c, []step{
		{"a first seen, delay 5m", 0, a, sdk.VerdictFail, "greylist", "300"},
		{"b first seen, delay 5m", 0, b, sdk.VerdictFail, "greylist", "300"},
	})
	reload := func(cfg map[string]any) {
		t.Helper()
		cfg["auto_allow_after"] = 0
		if err := s.Configure(context.Background(), env, cfg); err != nil {
			t.Fatal(err)
		}
	}
	reload(map[string]any{"delay": "49h"})
	run(t, s, c, []step{
		{"a retried as told, after the reload", 6 * time.Minute, a, sdk.VerdictPass, "passed", ""},
		{"a new triplet gets the new delay", 0, rcpt("192.0.2.1", "a@x.example", "d@example.test"), sdk.VerdictFail, "greylist", "176400"},
	})
	// A shorter delay lets a waiting triplet through sooner, as it
	// would a new one: a reload never makes mail already waiting wait
	// longer, nor ends its retry window sooner.
	reload(map[string]any{"delay": "30m"})
	e := rcpt("192.0.2.1", "a@x.example", "e@example.test")
	run(t, s, c, []step{{"e first seen, delay 30m", 0, e, sdk.VerdictFail, "greylist", "1800"}})
	reload(map[string]any{"delay": "1m"})
	run(t, s, c, []step{
		{"e too early for the new delay", 30 * time.Second, e, sdk.VerdictFail, "greylist", "30"},
		{"e retried after the new delay", 30 * time.Second, e, sdk.VerdictPass, "passed", ""},
		{"b still in its own window", 47 * time.Hour, b, sdk.VerdictPass, "passed", ""},
	})
}

// TestStoreReady: a triplet's Ready time is stored in the fourth word, a
// client's Count there too; each comes back as what it is, and passing a
// triplet keeps its Ready.
func TestStoreReady(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	eachStore(t, func(t *testing.T, open func(now func() time.Time) Store) {
		st := open((&clock{base}).now)
		defer st.Close()
		ctx := context.Background()
		triplet := Record{First: base.Add(-time.Minute), Ready: base.Add(4 * time.Minute)}
		client := Record{First: base.Add(-time.Minute), Passed: base, Count: 7}
		const tk, ck = "t|192.0.2.0/24|a@x.example|b@example.test", "c|192.0.2.0/24"
		for k, r := range map[string]Record{tk: triplet, ck: client} {
			if err := st.Put(ctx, k, r, base.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if got, ok, err := st.Get(ctx, k); !ok || err != nil || !sameRecord(got, r) {
				t.Errorf("%s: Get = %+v %v %v, want %+v", k, got, ok, err, r)
			}
		}
		if p, ok := st.(Passer); ok {
			passed := triplet
			passed.Passed = base
			if first, err := p.Pass(ctx, tk, passed, base.Add(time.Hour)); !first || err != nil {
				t.Fatalf("Pass = %v %v", first, err)
			}
			if got, ok, err := st.Get(ctx, tk); !ok || err != nil || !sameRecord(got, passed) {
				t.Errorf("passed: Get = %+v %v %v, want %+v", got, ok, err, passed)
			}
		}
	})
}
