package greylist

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestStore: the Store contract, table-driven, against both stores.
func TestStore(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	rec := Record{First: base.Add(-time.Minute), Count: 3}
	passed := Record{First: base.Add(-time.Hour), Passed: base.Add(-time.Minute)}
	cases := []struct {
		name    string
		put     *Record       // stored under "k" at base, if not nil
		expires time.Duration // from base
		later   time.Duration // clock moved before Get
		want    Record
		ok      bool
	}{
		{"missing", nil, 0, 0, Record{}, false},
		{"round trip", &rec, time.Hour, 0, rec, true},
		{"passed time kept", &passed, time.Hour, 0, passed, true},
		{"just before expiry", &rec, time.Hour, time.Hour - time.Nanosecond, rec, true},
		{"at expiry", &rec, time.Hour, time.Hour, Record{}, false},
		{"long expired", &rec, time.Hour, 50 * time.Hour, Record{}, false},
		{"expiry already past", &rec, -time.Second, 0, Record{}, false},
	}
	eachStore(t, func(t *testing.T, open func(now func() time.Time) Store) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := &clock{base}
				st := open(c.now)
				defer st.Close()
				ctx := context.Background()
				if tc.put != nil {
					if err := st.Put(ctx, "k", *tc.put, base.Add(tc.expires)); err != nil {
						t.Fatal(err)
					}
				}
				c.advance(tc.later)
				got, ok, err := st.Get(ctx, "k")
				if err != nil || ok != tc.ok || !sameRecord(got, tc.want) {
					t.Errorf("Get = %+v %v %v, want %+v %v", got, ok, err, tc.want, tc.ok)
				}
			})
		}
	})
}

func sameRecord(a, b Record) bool {
	return a.First.Equal(b.First) && a.Passed.Equal(b.Passed) && a.Count == b.Count && a.Ready.Equal(b.Ready)
}

// eachStore runs test with an opener of fresh, empty stores of each kind.
func eachStore(t *testing.T, test func(t *testing.T, open func(now func() time.Time) Store)) {
	t.Run("bbolt", func(t *testing.T) {
		test(t, func(now func() time.Time) Store {
			st, err := OpenBolt(filepath.Join(t.TempDir(), "g.db"), now)
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
	t.Run("redis", func(t *testing.T) {
		srv := startRedis(t)
		n := 0
		test(t, func(now func() time.Time) Store {
			n++ // a namespace per store: the server is shared by the cases
			st, err := OpenRedis(context.Background(), srv.url, "s"+string(rune('a'+n)), now)
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
}

// TestSharedGateways: two gateways (two stages, each its own client) on
// one Redis share the greylist. A triplet first seen by one is deferred by
// the other until the delay, then passed by it; the first then knows it.
func TestSharedGateways(t *testing.T) {
	env := sdk.Env{StageName: "greylist", RedisURL: startRedis(t).url}
	c := &clock{time.Unix(1_800_000_000, 0)}
	mx1 := newStage(t, env, c, map[string]any{"auto_allow_after": 2})
	mx2 := newStage(t, env, c, map[string]any{"auto_allow_after": 2})
	a := rcpt("203.0.113.5", "alice@sender.example", "bob@example.test")
	b := rcpt("203.0.113.6", "alice@sender.example", "carol@example.test")
	run(t, mx1, c, []step{{"first seen by mx1", 0, a, sdk.VerdictFail, "greylist", "300"}})
	run(t, mx2, c, []step{
		{"mx2 too early", 100 * time.Second, a, sdk.VerdictFail, "greylist", "200"},
		{"mx2 after the delay", 200 * time.Second, a, sdk.VerdictPass, "passed", ""},
	})
	run(t, mx1, c, []step{
		{"mx1 knows it", 0, a, sdk.VerdictPass, "known", ""},
		{"second triplet at mx1, another occasion", time.Hour, b, sdk.VerdictFail, "greylist", "300"},
	})
	run(t, mx2, c, []step{{"second passes at mx2", 5 * time.Minute, b, sdk.VerdictPass, "passed", ""}})
	run(t, mx1, c, []step{{"client count shared: auto-allowed at mx1", 0,
		rcpt("203.0.113.7", "x@other.example", "z@example.test"), sdk.VerdictPass, "auto_allow", ""}})
}

// TestRedisLayout: keys are namespaced by stage, values are the bbolt
// encoding, and every key carries a TTL, so Redis forgets old triplets.
func TestRedisLayout(t *testing.T) {
	srv := startRedis(t)
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, sdk.Env{StageName: "grey-mx", RedisURL: srv.url}, c, nil)
	run(t, s, c, []step{{"first", 0, rcpt("192.0.2.1", "A@x.example", "b@example.test"), sdk.VerdictFail, "greylist", "300"}})
	rdb := srv.client()
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	const key = "portcullis:greylist:grey-mx:t|192.0.2.0/24|a@x.example|b@example.test"
	if err != nil || len(keys) != 1 || keys[0] != key {
		t.Fatalf("keys %q (%v), want [%q]", keys, err, key)
	}
	v, err := rdb.Get(ctx, key).Bytes()
	want := encode(Record{First: c.now(), Ready: c.now().Add(5 * time.Minute)}, c.now().Add(5*time.Minute+48*time.Hour))
	if err != nil || !bytes.Equal(v, want) {
		t.Errorf("value %x (%v), want %x", v, err, want)
	}
	ttl, err := rdb.PTTL(ctx, key).Result()
	if err != nil || ttl <= 48*time.Hour || ttl > 5*time.Minute+48*time.Hour {
		t.Errorf("PTTL %v (%v), want about delay+retry_window", ttl, err)
	}
}

// TestRedisExpires: Redis removes a record by itself once its TTL runs out
// (real time here, so the TTL is short).
func TestRedisExpires(t *testing.T) {
	srv := startRedis(t)
	st, err := OpenRedis(context.Background(), srv.url, "g", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.Put(ctx, "k", Record{First: time.Now()}, time.Now().Add(50*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	rdb := srv.client()
	defer rdb.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n, err := rdb.Exists(ctx, KeyPrefix("g")+"k").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("key still in Redis 10s after its TTL")
		}
	}
	if _, ok, err := st.Get(ctx, "k"); ok || err != nil {
		t.Errorf("Get after expiry: ok %v err %v", ok, err)
	}
}

// TestRedisLoadErrors: a state.redis the server refuses (a wrong
// password, a database it lacks) or that does not parse is a load error
// that names it without leaking the password. A server that does not
// answer is not: the stage loads (an MX restarting during an outage of the
// Redis it shares must not stay down) and each check fails, for on_error
// to decide, until the server answers.
func TestRedisLoadErrors(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.client()
	defer rdb.Close()
	if err := rdb.ConfigSet(context.Background(), "requirepass", "right").Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, url, want string }{
		{"wrong password", "redis://:s3cret@" + srv.addr + "/0", "ping"},
		{"no such database", "redis://:right@" + srv.addr + "/999", "ping"},
		{"not a redis URL", "http://127.0.0.1/", "state.redis"},
		{"bad database", "redis://" + srv.addr + "/x", "state.redis"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := New().Configure(context.Background(), sdk.Env{StageName: "g", RedisURL: tc.url}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %v, want one mentioning %q and no password", err, tc.want)
			}
		})
	}

	port, err := freePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	s := New().(*Stage)
	if err := s.Configure(context.Background(), sdk.Env{StageName: "g", RedisURL: "redis://:s3cret@127.0.0.1:" + port + "/0"}, nil); err != nil {
		t.Fatalf("a Redis that does not answer refused the config: %v", err)
	}
	defer s.Close()
	if res, err := s.Check(context.Background(), rcpt("192.0.2.1", "a@x.example", "b@example.test")); err == nil {
		t.Fatalf("a check with Redis down: %+v, want an error", res)
	}
}

// TestSharedRace: gateway mx2 read nothing for a triplet, and before it
// stores the new record mx1 records the triplet (here: passes it). mx2
// must take mx1's record, not overwrite it with a fresh "first seen".
func TestSharedRace(t *testing.T) {
	env := sdk.Env{StageName: "greylist", RedisURL: startRedis(t).url}
	c := &clock{time.Unix(1_800_000_000, 0)}
	mx1 := newStage(t, env, c, nil)
	mx2 := newStage(t, env, c, nil)
	a := rcpt("203.0.113.5", "alice@sender.example", "bob@example.test")
	key := "t|203.0.113.0/24|alice@sender.example|bob@example.test"
	run(t, mx1, c, []step{
		{"mx1 first", 0, a, sdk.VerdictFail, "greylist", "300"},
		{"mx1 passes", 5 * time.Minute, a, sdk.VerdictPass, "passed", ""},
	})
	mx2.mu.Lock()
	res, err := mx2.decide(context.Background(), c.now(), key, Record{}, false, "203.0.113.0/24", map[string]string{})
	mx2.mu.Unlock()
	if err != nil || res.Verdict != sdk.VerdictPass || res.Tags[0] != "known" {
		t.Fatalf("mx2 with a stale read: %+v %v, want pass known", res, err)
	}
	run(t, mx1, c, []step{{"still passed at mx1", time.Minute, a, sdk.VerdictPass, "known", ""}})
}

// TestRedisAdd: SET NX semantics of Add.
func TestRedisAdd(t *testing.T) {
	st, err := OpenRedis(context.Background(), startRedis(t).url, "g", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	first := Record{First: time.Unix(1_800_000_000, 0)}
	for i, want := range []bool{true, false} {
		r := Record{First: first.First.Add(time.Duration(i) * time.Minute)}
		added, err := st.Add(ctx, "k", r, time.Now().Add(time.Hour))
		if err != nil || added != want {
			t.Fatalf("Add #%d: added %v (%v), want %v", i+1, added, err, want)
		}
	}
	if got, ok, err := st.Get(ctx, "k"); !ok || err != nil || !sameRecord(got, first) {
		t.Errorf("Get = %+v %v %v, want the first record", got, ok, err)
	}
}

// TestStoreIncr: Incr counts on a record (First kept, Passed now),
// starts a new one, First and Passed now, where there is none or it
// expired, and renews the expiry. Within gap of the last count it counts
// nothing, but still renews; a record written while every pass counted
// (Passed zero) is counted.
func TestStoreIncr(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	eachStore(t, func(t *testing.T, open func(now func() time.Time) Store) {
		c := &clock{base}
		st := open(c.now)
		defer st.Close()
		ctx := context.Background()
		incr := func(name, key string, gap time.Duration, want int, rec Record) {
			t.Helper()
			now := c.now()
			if n, err := st.Incr(ctx, key, now, now.Add(time.Hour), gap); n != want || err != nil {
				t.Fatalf("%s: Incr = %d %v, want %d", name, n, err, want)
			}
			c.advance(59 * time.Minute) // past any earlier expiry, before this one
			if got, ok, err := st.Get(ctx, key); !ok || err != nil || !sameRecord(got, rec) {
				t.Fatalf("%s: Get after Incr = %+v %v %v, want %+v (expiry renewed)", name, got, ok, err, rec)
			}
			c.advance(-59 * time.Minute)
		}
		old := Record{First: base.Add(-time.Hour), Count: 4} // as written while every pass counted
		if err := st.Put(ctx, "k", old, base.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		incr("record counting every pass", "k", time.Hour, 5, Record{First: old.First, Passed: base, Count: 5})
		c.advance(59 * time.Minute)
		incr("within the gap", "k", time.Hour, 5, Record{First: old.First, Passed: base, Count: 5})
		c.advance(time.Minute)
		incr("gap since the last count", "k", time.Hour, 6, Record{First: old.First, Passed: c.now(), Count: 6})
		incr("no gap", "k", 0, 7, Record{First: old.First, Passed: c.now(), Count: 7})
		c.advance(-2 * time.Hour) // clock set back
		incr("counted after now by more than the gap", "k", time.Hour, 8, Record{First: old.First, Passed: c.now(), Count: 8})
		c.advance(-30 * time.Minute) // another gateway's clock, 30m behind
		incr("counted after now by less than the gap", "k", time.Hour, 8, Record{First: old.First, Passed: c.now().Add(30 * time.Minute), Count: 8})
		c.advance(2 * time.Hour) // expired
		now := c.now()
		incr("expired record", "k", time.Hour, 1, Record{First: now, Passed: now, Count: 1})
		incr("no record", "new", time.Hour, 1, Record{First: now, Passed: now, Count: 1})
	})
}

// TestRedisIncrShared: gateways on one Redis counting one client's passes
// at once lose none of them (a read, then a write, would), and count one
// occasion once.
func TestRedisIncrShared(t *testing.T) {
	url := startRedis(t).url
	ctx := context.Background()
	const gateways, each = 4, 50
	for _, tc := range []struct {
		key  string
		gap  time.Duration
		want int
	}{
		{"c|203.0.113.0/24", 0, gateways * each},
		{"c|198.51.100.0/24", time.Hour, 1},
	} {
		var wg sync.WaitGroup
		errs := make(chan error, gateways*each)
		for range gateways {
			st, err := OpenRedis(ctx, url, "greylist", time.Now)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for range each {
				wg.Go(func() {
					now := time.Now()
					if _, err := st.Incr(ctx, tc.key, now, now.Add(time.Hour), tc.gap); err != nil {
						errs <- err
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		st, err := OpenRedis(ctx, url, "greylist", time.Now)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if r, ok, err := st.Get(ctx, tc.key); !ok || err != nil || r.Count != tc.want {
			t.Fatalf("gap %v: count = %d (%v %v), want %d", tc.gap, r.Count, ok, err, tc.want)
		}
	}
}

// TestSharedDoublePass: a sender retrying through two MXes at once, after
// the delay: both read the triplet not yet passed and both pass it, but
// the pass is counted once towards auto_allow_after (with two, one retry
// auto-allowed the sender's whole /24).
func TestSharedDoublePass(t *testing.T) {
	env := sdk.Env{StageName: "greylist", RedisURL: startRedis(t).url}
	c := &clock{time.Unix(1_800_000_000, 0)}
	mx1 := newStage(t, env, c, map[string]any{"auto_allow_after": 2})
	mx2 := newStage(t, env, c, map[string]any{"auto_allow_after": 2})
	a := rcpt("203.0.113.5", "alice@sender.example", "bob@example.test")
	key := "t|203.0.113.0/24|alice@sender.example|bob@example.test"
	run(t, mx1, c, []step{{"first seen", 0, a, sdk.VerdictFail, "greylist", "300"}})
	c.advance(5 * time.Minute)
	r, ok, err := mx1.store.Get(context.Background(), key)
	if err != nil || !ok {
		t.Fatalf("record: %v %v", ok, err)
	}
	for _, mx := range []*Stage{mx1, mx2} { // both read r before either passed it
		mx.mu.Lock()
		res, err := mx.decide(context.Background(), c.now(), key, r, true, "203.0.113.0/24", map[string]string{})
		mx.mu.Unlock()
		if err != nil || res.Verdict != sdk.VerdictPass {
			t.Fatalf("retry: %+v %v", res, err)
		}
	}
	cl, ok, err := mx1.store.Get(context.Background(), "c|203.0.113.0/24")
	if err != nil || !ok || cl.Count != 1 {
		t.Fatalf("client passes counted: %+v %v %v, want 1", cl, ok, err)
	}
	run(t, mx2, c, []step{{"a new triplet from the /24 is not auto-allowed", 0,
		rcpt("203.0.113.7", "x@other.example", "z@example.test"), sdk.VerdictFail, "greylist", "300"}})
}
