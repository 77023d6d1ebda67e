package greylist

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	_ Store = (*RedisStore)(nil)
	_ Adder = (*RedisStore)(nil)
)

// RedisStore is a Store in Redis, for greylisting state shared by several
// gateways: a triplet first seen by one is passed by another after the
// delay. Values are encoded as BoltStore encodes them (expiry included), and
// each key carries a TTL so that Redis drops old triplets itself.
//
// The TTL is expires minus the store's clock, sent relative (SET PX), so a
// gateway whose clock is off from the Redis host's still gets the lifetime
// it asked for; Get also checks the encoded expiry against the clock, which
// keeps records exactly as long as BoltStore does.
type RedisStore struct {
	rdb    *redis.Client
	prefix string
	now    func() time.Time
}

// KeyPrefix is the namespace of a stage's keys in Redis: one stage's
// triplets never meet another's, even on a shared database.
func KeyPrefix(stage string) string { return "portcullis:greylist:" + stage + ":" }

// OpenRedis connects to the Redis server at rawURL
// (redis://[user:password@]host:port/db, rediss:// for TLS, unix://...)
// and pings it within ctx, so that a wrong address is a load error rather
// than a failure at the first recipient. Keys are namespaced by stage.
func OpenRedis(ctx context.Context, rawURL, stage string, now func() time.Time) (*RedisStore, error) {
	opt, err := redisOptions(rawURL)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("greylist: state.redis %s: ping: %v", redact(rawURL), err)
	}
	return &RedisStore{rdb: rdb, prefix: KeyPrefix(stage), now: now}, nil
}

// redisOptions reads the state.redis URL, connecting nowhere.
func redisOptions(rawURL string) (*redis.Options, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("greylist: state.redis %s: %v", redact(rawURL), err)
	}
	// Without this go-redis ignores ctx deadlines and waits its own
	// read/write timeouts, overrunning the stage's timeout.
	opt.ContextTimeoutEnabled = true
	return opt, nil
}

// redact hides a password in the URL for error messages and logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Get implements Store. A missing key is ok false; any other Redis failure
// (including ctx's deadline) is an error, never a silent pass.
func (s *RedisStore) Get(ctx context.Context, key string) (Record, bool, error) {
	v, err := s.rdb.Get(ctx, s.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("greylist: redis get: %w", err)
	}
	r, exp, err := decode(v)
	if err != nil {
		return Record{}, false, fmt.Errorf("greylist: redis key %s: %w", s.prefix+key, err)
	}
	if !s.now().Before(exp) {
		return Record{}, false, nil
	}
	return r, true, nil
}

// Put implements Store. An expiry already past deletes the key: the record
// would be ignored anyway, and SET refuses a TTL under a millisecond.
func (s *RedisStore) Put(ctx context.Context, key string, r Record, expires time.Time) error {
	ttl := expires.Sub(s.now())
	var err error
	if ttl < time.Millisecond {
		err = s.rdb.Del(ctx, s.prefix+key).Err()
	} else {
		err = s.rdb.Set(ctx, s.prefix+key, encode(r, expires), ttl).Err()
	}
	if err != nil {
		return fmt.Errorf("greylist: redis set: %w", err)
	}
	return nil
}

// Add implements Adder with SET NX: of two gateways creating one triplet
// at once, one wins and the other reads its record.
func (s *RedisStore) Add(ctx context.Context, key string, r Record, expires time.Time) (bool, error) {
	ttl := expires.Sub(s.now())
	if ttl < time.Millisecond {
		return false, nil
	}
	added, err := s.rdb.SetNX(ctx, s.prefix+key, encode(r, expires), ttl).Result()
	if err != nil {
		return false, fmt.Errorf("greylist: redis set nx: %w", err)
	}
	return added, nil
}

// Close implements Store.
func (s *RedisStore) Close() error { return s.rdb.Close() }
