package greylist

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"

	"github.com/portcullis-mta/portcullis/sdk"
)

// writeRaw stores records as bytes (hex, spaces allowed) under their keys
// in the state env names, before a stage opens it: the state an older
// version left.
func writeRaw(t *testing.T, env sdk.Env, now time.Time, records map[string]string) {
	t.Helper()
	raw := map[string][]byte{}
	for k, h := range records {
		b, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
		if err != nil || len(b) != recordLen {
			t.Fatalf("%s: bad test record %q: %v", k, h, err)
		}
		raw[k] = b
	}
	if env.RedisURL != "" {
		opt, err := redis.ParseURL(env.RedisURL)
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		for k, b := range raw {
			_, exp, _ := decode(b)
			if err := rdb.Set(context.Background(), KeyPrefix(env.StageName)+k, b, exp.Sub(now)).Err(); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	db, err := bolt.Open(env.StatePath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		for k, v := range raw {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUpgradeClientRecords(t *testing.T) { eachBackend(t, testUpgradeClientRecords) }

// testUpgradeClientRecords: client records written while every passed
// triplet counted (Passed left zero) load as they are. A count is kept,
// not reset: the next proper retry adds to it, and a client auto-allowed
// stays so.
func testUpgradeClientRecords(t *testing.T, fresh func(t testing.TB) sdk.Env) {
	base := time.Unix(1_800_000_000, 0)
	env := fresh(t)
	// Words: expiry (base+35d), first counted (base-1h), passed (zero), count.
	writeRaw(t, env, base, map[string]string{
		"c|192.0.2.0/24":    "1905a0c671810000 18fadf3062fb6000 0000000000000000 0000000000000003",
		"c|198.51.100.0/24": "1905a0c671810000 18fadf3062fb6000 0000000000000000 0000000000000005",
	})
	c := &clock{base}
	s := newStage(t, env, c, nil) // auto_allow_after: 5
	a := rcpt("192.0.2.1", "a@x.example", "a@example.test")
	b := rcpt("192.0.2.1", "a@x.example", "b@example.test")
	d := rcpt("192.0.2.1", "a@x.example", "d@example.test")
	run(t, s, c, []step{
		{"auto-allowed client kept", 0, rcpt("198.51.100.7", "x@y.example", "z@example.test"), sdk.VerdictPass, "auto_allow", ""},
		{"a", 0, a, sdk.VerdictFail, "greylist", "300"},
		{"b", 0, b, sdk.VerdictFail, "greylist", "300"},
		{"a retried: the fourth", 5 * time.Minute, a, sdk.VerdictPass, "passed", ""},
		{"b retried: the same occasion", 0, b, sdk.VerdictPass, "passed", ""},
		{"four", 0, rcpt("192.0.2.9", "x@y.example", "z@example.test"), sdk.VerdictFail, "greylist", "300"},
		{"d", time.Hour, d, sdk.VerdictFail, "greylist", "300"},
		{"d retried: the fifth", 5 * time.Minute, d, sdk.VerdictPass, "passed", ""},
		{"auto-allowed", 0, rcpt("192.0.2.9", "w@y.example", "z@example.test"), sdk.VerdictPass, "auto_allow", ""},
	})
}

func TestUpgradeTripletRecords(t *testing.T) { eachBackend(t, testUpgradeTripletRecords) }

// testUpgradeTripletRecords: triplet records written before a triplet kept
// its Ready time (the fourth word zero: those an upgraded gateway finds,
// and those a gateway of the previous version sharing the Redis still
// writes) load as they are, and a waiting one keeps the delay it was first
// seen under too, read from its expiry (first seen + delay + retry_window,
// as then configured) less retry_window. Judged by the delay now, a reload
// to 49h told the one first seen a minute before, under 5m, to come back
// 48h59m later, past the end of its record (48h04m later): it started over.
func testUpgradeTripletRecords(t *testing.T, fresh func(t testing.TB) sdk.Env) {
	base := time.Unix(1_800_000_000, 0)
	env := fresh(t)
	// Words: expiry, first seen, passed, zero; all first seen under delay
	// 5m and retry_window 48h.
	writeRaw(t, env, base, map[string]string{
		// waiting, first seen base-1h, expiry base-1h+5m+48h
		"t|192.0.2.0/24|a@x.example|a@example.test": "18fb7c9f5efe1800 18fadf3062fb6000 0000000000000000 0000000000000000",
		// passed at base-1m, expiry base+35d
		"t|192.0.2.0/24|a@x.example|b@example.test": "1905a0c671810000 18fadf3062fb6000 18fae2689b6ca800 0000000000000000",
		// waiting, first seen base-2m, expiry base-2m+5m+48h
		"t|192.0.2.0/24|a@x.example|c@example.test": "18fb7fc99f280800 18fae25aa3255000 0000000000000000 0000000000000000",
		// waiting, first seen base-1m, expiry base-1m+5m+48h
		"t|192.0.2.0/24|a@x.example|d@example.test": "18fb7fd7976f6000 18fae2689b6ca800 0000000000000000 0000000000000000",
		// waiting, first seen base-2m, expiry base-2m+5m+48h
		"t|192.0.2.0/24|a@x.example|f@example.test": "18fb7fc99f280800 18fae25aa3255000 0000000000000000 0000000000000000",
	})
	c := &clock{base}
	s := newStage(t, env, c, map[string]any{"delay": "90m", "auto_allow_after": 0})
	run(t, s, c, []step{
		{"passed triplet known", 0, rcpt("192.0.2.1", "a@x.example", "b@example.test"), sdk.VerdictPass, "known", ""},
		{"waiting an hour, its delay 5m", 0, rcpt("192.0.2.1", "a@x.example", "a@example.test"), sdk.VerdictPass, "passed", ""},
		{"waiting 2m, its delay 5m", 0, rcpt("192.0.2.1", "a@x.example", "c@example.test"), sdk.VerdictFail, "greylist", "180"},
		{"a new triplet, the delay now", 0, rcpt("192.0.2.1", "a@x.example", "e@example.test"), sdk.VerdictFail, "greylist", "5400"},
	})
	reload := func(cfg map[string]any) {
		t.Helper()
		cfg["auto_allow_after"] = 0
		if err := s.Configure(context.Background(), env, cfg); err != nil {
			t.Fatal(err)
		}
	}
	// A retry_window lengthened by more than the delay then leaves
	// nothing to read: the delay now, not none.
	reload(map[string]any{"delay": "10m", "retry_window": "72h"})
	run(t, s, c, []step{{"window lengthened: waiting 2m, the delay now", 0,
		rcpt("192.0.2.1", "a@x.example", "f@example.test"), sdk.VerdictFail, "greylist", "480"}})
	reload(map[string]any{"delay": "49h"})
	d := rcpt("192.0.2.1", "a@x.example", "d@example.test")
	run(t, s, c, []step{
		{"reload to 49h: waiting 1m, its delay 5m", 0, d, sdk.VerdictFail, "greylist", "240"},
		{"retried as told", 4 * time.Minute, d, sdk.VerdictPass, "passed", ""},
	})
}
