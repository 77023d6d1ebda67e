package greylist

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestRedisDown: once the server is gone a check is an error (the stage's
// on_error decides), never a pass.
func TestRedisDown(t *testing.T) {
	srv := startRedis(t)
	c := &clock{time.Unix(1_800_000_000, 0)}
	s := newStage(t, sdk.Env{StageName: "g", RedisURL: srv.url}, c, nil)
	a := rcpt("192.0.2.1", "a@x.example", "b@example.test")
	run(t, s, c, []step{{"first", 0, a, sdk.VerdictFail, "greylist", "300"}})
	srv.kill()
	c.advance(5 * time.Minute)
	res, err := s.Check(context.Background(), a)
	if err == nil {
		t.Fatalf("Redis down: got %+v, want an error", res)
	}
}

// TestRedisDeadline: a stalled server is cut off at ctx's deadline (the
// stage timeout), not go-redis's own read timeout.
func TestRedisDeadline(t *testing.T) {
	srv := startRedis(t)
	st, err := OpenRedis(context.Background(), srv.url, "g", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rdb := srv.client()
	defer rdb.Close()
	// CLIENT PAUSE holds every client's commands, as a stalled server would.
	if err := rdb.Do(context.Background(), "CLIENT", "PAUSE", "2000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	for _, op := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"get", func(ctx context.Context) error { _, _, err := st.Get(ctx, "k"); return err }},
		{"put", func(ctx context.Context) error { return st.Put(ctx, "k", Record{}, time.Now().Add(time.Hour)) }},
	} {
		t.Run(op.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if err := op.call(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("paused server: %v, want context.DeadlineExceeded", err)
			}
		})
	}
}

// TestRedisReconfigure: a reload with the same URL and stage keeps the
// client; another stage name is another namespace; switching from a
// bbolt file to Redis moves the stage.
func TestRedisReconfigure(t *testing.T) {
	srv := startRedis(t)
	c := &clock{time.Unix(1_800_000_000, 0)}
	env := sdk.Env{StageName: "g", RedisURL: srv.url, StatePath: filepath.Join(t.TempDir(), "g.db")}
	s := newStage(t, sdk.Env{StatePath: env.StatePath}, c, nil)
	a := rcpt("192.0.2.1", "a@x.example", "b@example.test")
	steps := []struct {
		env  sdk.Env
		step step
		kept bool
	}{
		{sdk.Env{StatePath: env.StatePath}, step{"bbolt", 0, a, sdk.VerdictFail, "greylist", "300"}, true},
		{env, step{"redis: a new state", 0, a, sdk.VerdictFail, "greylist", "300"}, false},
		{env, step{"same redis, same state", 5 * time.Minute, a, sdk.VerdictPass, "passed", ""}, true},
		{sdk.Env{StageName: "g2", RedisURL: srv.url}, step{"other stage", 0, a, sdk.VerdictFail, "greylist", "300"}, false},
	}
	for _, st := range steps {
		before := s.store
		if err := s.Configure(context.Background(), st.env, nil); err != nil {
			t.Fatal(err)
		}
		if kept := s.store == before; kept != st.kept {
			t.Errorf("%s: store kept %v, want %v", st.step.name, kept, st.kept)
		}
		run(t, s, c, []step{st.step})
	}
}

// BenchmarkCheck: a known triplet's check (two GETs and a SET) on each
// store; bbolt is the baseline for Redis's round trips over loopback.
func BenchmarkCheck(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			c := &clock{time.Unix(1_800_000_000, 0)}
			s := &Stage{now: c.now}
			if err := s.Configure(context.Background(), be.fresh(b), nil); err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			req := rcpt("192.0.2.1", "a@x.example", "b@example.test")
			s.Check(ctx, req)
			c.advance(5 * time.Minute)
			for b.Loop() {
				res, err := s.Check(ctx, req)
				if err != nil || res.Verdict != sdk.VerdictPass {
					b.Fatal(fmt.Sprint(res, err))
				}
			}
		})
	}
}

// slowRedis is a RedisStore whose every command takes delay more, as a
// Redis across the network or under load does, and which counts the
// commands in flight at once.
type slowRedis struct {
	*RedisStore
	delay time.Duration
	mu    *sync.Mutex
	now   *int // commands in flight
	most  *int // the most in flight at once
}

func (s slowRedis) wait() {
	s.mu.Lock()
	*s.now++
	*s.most = max(*s.most, *s.now)
	s.mu.Unlock()
	time.Sleep(s.delay)
	s.mu.Lock()
	*s.now--
	s.mu.Unlock()
}

func (s slowRedis) Get(ctx context.Context, key string) (Record, bool, error) {
	s.wait()
	return s.RedisStore.Get(ctx, key)
}

func (s slowRedis) Put(ctx context.Context, key string, r Record, expires time.Time) error {
	s.wait()
	return s.RedisStore.Put(ctx, key, r, expires)
}

func (s slowRedis) Add(ctx context.Context, key string, r Record, expires time.Time) (bool, error) {
	s.wait()
	return s.RedisStore.Add(ctx, key, r, expires)
}

func (s slowRedis) Pass(ctx context.Context, key string, r Record, expires time.Time) (bool, error) {
	s.wait()
	return s.RedisStore.Pass(ctx, key, r, expires)
}

func (s slowRedis) Incr(ctx context.Context, key string, now, expires time.Time, gap time.Duration) (int, error) {
	s.wait()
	return s.RedisStore.Incr(ctx, key, now, expires, gap)
}

// TestRedisSlowConcurrent: checks on a shared store do not queue behind
// each other. Each is three round trips; held one at a time by the
// stage's lock, 20 RCPTs at once against a Redis 40 ms away took 2.4 s,
// and those at the back of the queue overran the stage timeout. The test
// asks for overlap, not for a time: under the lock no two commands were
// ever in flight at once.
func TestRedisSlowConcurrent(t *testing.T) {
	srv := startRedis(t)
	st, err := OpenRedis(context.Background(), srv.url, "g", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var now, most int
	s := NewWithStore(slowRedis{st, 40 * time.Millisecond, &mu, &now, &most}, time.Now)
	if err := s.Configure(context.Background(), sdk.Env{StageName: "g"}, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() {
			res, err := s.Check(context.Background(), rcpt("192.0.2.1", fmt.Sprintf("s%d@x.example", i), "b@example.test"))
			if err == nil && res.Verdict != sdk.VerdictFail {
				err = fmt.Errorf("verdict %s, want fail (new triplet)", res.Verdict)
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if most < 2 {
		t.Errorf("at most %d Redis command(s) in flight at once: the checks of %d RCPTs ran one after another", most, n)
	}
}
