package greylist

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// snapshot is every key of the stage's store with its stored bytes (the
// record and its expiry): a record created, renewed, counted or swept
// changes it.
func snapshot(t *testing.T, s *Stage, env sdk.Env) map[string]string {
	t.Helper()
	out := map[string]string{}
	if env.RedisURL != "" {
		opt, err := redis.ParseURL(env.RedisURL)
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		ctx := context.Background()
		keys, err := rdb.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			v, err := rdb.Get(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			out[k] = v
		}
		return out
	}
	err := s.store.(*BoltStore).db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDryRunChangesNothing(t *testing.T) { eachBackend(t, testDryRunChangesNothing) }

// testDryRunChangesNothing: a dry-run call (portcullis scan) over the
// plugin protocol answers as a real call would from what is stored, and
// leaves the store byte for byte as it was: no new triplet, no pass
// recorded, no renewal, no client count, no sweep.
func testDryRunChangesNothing(t *testing.T, fresh func(t testing.TB) sdk.Env) {
	env := fresh(t)
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, env, c, map[string]any{"delay": "5m", "auto_allow_after": 1})
	cl := plugintest.Start(t, s)
	ctx := context.Background()
	dry := func(r *sdk.Request) *sdk.Request { d := *r; d.DryRun = true; return &d }
	a := rcpt("203.0.113.5", "alice@sender.example", "bob@example.test")
	b := rcpt("198.51.100.6", "carol@sender.example", "dave@example.test")

	check := func(name string, req *sdk.Request, verdict sdk.Verdict, tag, reason string) {
		t.Helper()
		res, err := cl.Check(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Verdict != verdict || !slices.Equal(res.Tags, []string{tag}) || res.Reason != reason {
			t.Fatalf("%s: got %s %q %q, want %s %q %q", name, res.Verdict, res.Tags, res.Reason, verdict, tag, reason)
		}
	}
	unchanged := func(name string, step func()) {
		t.Helper()
		before := snapshot(t, s, env)
		step()
		if after := snapshot(t, s, env); !maps.Equal(before, after) {
			t.Fatalf("%s: the dry run changed the store\nbefore %q\n after %q", name, before, after)
		}
	}

	unchanged("new triplet, twice", func() {
		check("dry 1", dry(a), sdk.VerdictFail, "greylist", "greylisted: new triplet")
		check("dry 2", dry(a), sdk.VerdictFail, "greylist", "greylisted: new triplet")
	})
	if n := len(snapshot(t, s, env)); n != 0 {
		t.Fatalf("%d records after dry runs only, want none", n)
	}
	check("real first attempt", a, sdk.VerdictFail, "greylist", "greylisted: new triplet")
	c.advance(time.Minute)
	unchanged("too early", func() {
		check("dry too early", dry(a), sdk.VerdictFail, "greylist", "greylisted: retried too early")
	})
	c.advance(5 * time.Minute)
	unchanged("retry after the delay", func() {
		check("dry retry", dry(a), sdk.VerdictPass, "passed", "retried after the delay")
		check("dry retry again: not recorded", dry(a), sdk.VerdictPass, "passed", "retried after the delay")
	})
	check("real retry", a, sdk.VerdictPass, "passed", "retried after the delay")
	c.advance(time.Hour)
	unchanged("known and auto-allowed", func() {
		check("dry known", dry(a), sdk.VerdictPass, "auto_allow", "client 203.0.113.0/24: proper retries counted (an hour apart): 1")
		check("dry other client", dry(b), sdk.VerdictFail, "greylist", "greylisted: new triplet")
	})
	// Everything expired: a real call would sweep the bbolt file now.
	c.advance(40 * 24 * time.Hour)
	unchanged("expired, not swept", func() {
		check("dry after expiry", dry(a), sdk.VerdictFail, "greylist", "greylisted: new triplet")
	})
	if n := len(snapshot(t, s, env)); n == 0 {
		t.Fatal("no records left to test the sweep with")
	}
}

// TestDryRunKnown: a known triplet (no auto-allow) is passed by a dry run
// without renewing it.
func TestDryRunKnown(t *testing.T) {
	env := boltEnv(t)
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, env, c, map[string]any{"delay": "5m", "auto_allow_after": 0})
	a := rcpt("203.0.113.5", "alice@sender.example", "bob@example.test")
	run(t, s, c, []step{
		{"first", 0, a, sdk.VerdictFail, "greylist", "300"},
		{"retry", 5 * time.Minute, a, sdk.VerdictPass, "passed", ""},
	})
	before := snapshot(t, s, env)
	d := *a
	d.DryRun = true
	run(t, s, c, []step{{"dry known", time.Hour, &d, sdk.VerdictPass, "known", ""}})
	if after := snapshot(t, s, env); !maps.Equal(before, after) {
		t.Fatalf("the dry run renewed the triplet\nbefore %q\n after %q", before, after)
	}
}
