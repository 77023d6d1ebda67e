package greylist

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	_ Store  = (*RedisStore)(nil)
	_ Adder  = (*RedisStore)(nil)
	_ Passer = (*RedisStore)(nil)
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
// and pings it within ctx. A server that answers with a refusal (a wrong
// password, a database it does not have) is a load error: that is the
// config. One that does not answer is not: an outage of the Redis that
// several MXes share, at the moment one of them restarts, must not keep
// that MX down; the store is returned, the outage logged, and until the
// server answers each check fails and the stage's on_error decides, as for
// an outage while running. Keys are namespaced by stage.
func OpenRedis(ctx context.Context, rawURL, stage string, now func() time.Time) (*RedisStore, error) {
	opt, err := redisOptions(rawURL)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		var refused redis.Error
		if errors.As(err, &refused) {
			rdb.Close()
			return nil, fmt.Errorf("greylist: state.redis %s: ping: %v", redact(rawURL), err)
		}
		slog.WarnContext(ctx, "greylist: state.redis does not answer; checks fail (on_error decides) until it does",
			"redis", redact(rawURL), "err", err.Error())
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
	r, exp, err := decodeKey(key, v)
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

// incrScript is Incr in one step on the server. The record is the bbolt
// encoding (four big-endian 64-bit words: expiry, first, passed, count);
// Lua's numbers are doubles, too narrow for nanosecond times, so the
// script compares and copies bytes and does arithmetic on the count only.
// ARGV[1] is the record to store where none is live (first and passed
// now, count 1, the new expiry), ARGV[2] the store's clock as a word (a
// record is live while its expiry is later), ARGV[3] the TTL in
// milliseconds, ARGV[4] and ARGV[5] now-gap and now+gap as words: a live
// record is counted (passed set to now) when its passed is at or before
// the first or after the second (see due; a zero passed is before). It
// returns the count.
var incrScript = redis.NewScript(`
local function cmp(v, i, w)
  for k = 0, 7 do
    local a, b = string.byte(v, i + k), string.byte(w, 1 + k)
    if a ~= b then
      if a < b then return -1 end
      return 1
    end
  end
  return 0
end
local v = redis.call('GET', KEYS[1])
if not (v and #v == 32 and cmp(v, 1, ARGV[2]) > 0) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
local count = 0
for i = 25, 32 do count = count * 256 + string.byte(v, i) end
local passed = string.sub(v, 17, 24)
if cmp(v, 17, ARGV[4]) <= 0 or cmp(v, 17, ARGV[5]) > 0 then
  count = count + 1
  passed = string.sub(ARGV[1], 17, 24)
end
local w = {}
local n = count
for i = 8, 1, -1 do w[i] = string.char(n % 256); n = math.floor(n / 256) end
v = string.sub(ARGV[1], 1, 8) .. string.sub(v, 9, 16) .. passed .. table.concat(w)
redis.call('SET', KEYS[1], v, 'PX', ARGV[3])
return count
`)

// Incr implements Store with a Lua script (incrScript), atomic on the
// server: gateways counting one client at once lose no increment, count
// one occasion once, and none waits for another.
func (s *RedisStore) Incr(ctx context.Context, key string, now, expires time.Time, gap time.Duration) (int, error) {
	ttl := max(expires.Sub(s.now()), time.Millisecond)
	n, err := incrScript.Run(ctx, s.rdb, []string{s.prefix + key},
		encode(Record{First: now, Passed: now, Count: 1}, expires), word(s.now()),
		ttl.Milliseconds(), word(now.Add(-gap)), word(now.Add(gap))).Int()
	if err != nil {
		return 0, fmt.Errorf("greylist: redis incr: %w", err)
	}
	return n, nil
}

// word is t as the encoding holds it, for a script to compare bytes.
func word(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))
}

// passScript marks a triplet passed unless a record is there that is
// passed already (bytes 17-24 of the encoding, the Passed time, non-zero):
// KEYS[1] the key, ARGV[1] the new value, ARGV[2] its TTL in ms. It
// returns 1 when it stored the value.
var passScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and #v == 32 and string.sub(v, 17, 24) ~= string.rep('\0', 8) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// Pass is Passer's: the check and the store in one step on the server.
func (s *RedisStore) Pass(ctx context.Context, key string, r Record, expires time.Time) (bool, error) {
	ttl := max(expires.Sub(s.now()), time.Millisecond)
	n, err := passScript.Run(ctx, s.rdb, []string{s.prefix + key}, encode(r, expires), ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("greylist: redis pass: %w", err)
	}
	return n == 1, nil
}

// Close implements Store.
func (s *RedisStore) Close() error { return s.rdb.Close() }
