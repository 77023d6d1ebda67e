package greylist

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/portcullis-mta/portcullis/sdk"
)

// Record is what the greylist remembers about a triplet or a client.
//
// It is stored as four words (see encode): the expiry, First, Passed, and
// Count for a client or Ready for a triplet, never both.
type Record struct {
	First  time.Time // triplet: first seen; client: first counted
	Passed time.Time // triplet: first let through, zero while greylisted; client: last counted (zero if written while every pass counted)
	Count  int       // client: the occasions it retried properly (see Store.Incr)
	Ready  time.Time // triplet: when a retry may pass by the delay it was first seen under; zero if written before it was kept

	// expires is when a triplet's record expires, as Get found it: for
	// one written before Ready was kept, first seen + delay +
	// retry_window as then configured (see Stage.ready). Put ignores it;
	// zero from a Store that does not set it.
	expires time.Time
}

// Store keeps records until they expire. The embedded implementation is
// BoltStore; RedisStore (GET, and SET with a PX TTL) is the one shared by
// several gateways.
type Store interface {
	// Get returns the record under key, ok false when there is none or it expired.
	Get(ctx context.Context, key string) (r Record, ok bool, err error)
	// Put stores r under key until expires.
	Put(ctx context.Context, key string, r Record, expires time.Time) error
	// Incr counts a client's pass at now: it adds one to the Count of the
	// record under key and sets its Passed to now (a new record, First
	// and Passed now, where there is none or it expired), unless the
	// record was counted less than gap before now (see due). It keeps
	// the record until expires either way, and returns the count. It is
	// atomic: passes counted at once, by several gateways on one Redis,
	// are counted as they would be one after another.
	Incr(ctx context.Context, key string, now, expires time.Time, gap time.Duration) (int, error)
	// Close releases the store.
	Close() error
}

// Adder is a Store shared by several gateways that can store a record only
// where there is none, atomically (RedisStore: SET NX).
type Adder interface {
	// Add stores r under key until expires unless key holds a record;
	// added reports whether it did.
	Add(ctx context.Context, key string, r Record, expires time.Time) (added bool, err error)
}

// Passer is a Store shared by several gateways that can mark a triplet
// passed only where no gateway did yet, atomically (RedisStore: a script
// on the server): a sender retrying through two MXes at once is one pass,
// counted once towards auto_allow_after, not two.
type Passer interface {
	// Pass stores r (Passed set) under key until expires unless the
	// record there is passed already; first reports whether it did.
	Pass(ctx context.Context, key string, r Record, expires time.Time) (first bool, err error)
}

// BoltStore is a Store in a bbolt file. Expired records are ignored by Get
// and removed by Sweep.
type BoltStore struct {
	db  *bolt.DB
	now func() time.Time
}

var bucket = []byte("greylist")

// OpenBolt opens (creating) the bbolt file at path. The file is locked
// while open: one process, one file.
func OpenBolt(path string, now func() time.Time) (*BoltStore, error) {
	if err := sdk.CheckBoltFile(path); err != nil {
		return nil, fmt.Errorf("greylist: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		// `portcullis scan` beside a running gateway gets here.
		return nil, fmt.Errorf("greylist: open %s: in use by another process (a running gateway holds it; "+
			"for a scan beside it, use a copy of the config with another state.path): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("greylist: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("greylist: %s: %w", path, err)
	}
	return &BoltStore{db: db, now: now}, nil
}

const recordLen = 8 * 4

func encode(r Record, expires time.Time) []byte {
	b := make([]byte, recordLen)
	binary.BigEndian.PutUint64(b[0:], uint64(expires.UnixNano()))
	binary.BigEndian.PutUint64(b[8:], uint64(unixNano(r.First)))
	binary.BigEndian.PutUint64(b[16:], uint64(unixNano(r.Passed)))
	if r.Ready.IsZero() {
		binary.BigEndian.PutUint64(b[24:], uint64(r.Count))
	} else {
		binary.BigEndian.PutUint64(b[24:], uint64(r.Ready.UnixNano()))
	}
	return b
}

func decode(b []byte) (Record, time.Time, error) {
	if len(b) != recordLen {
		return Record{}, time.Time{}, errors.New("greylist: corrupt record")
	}
	r := Record{
		First:  fromNano(int64(binary.BigEndian.Uint64(b[8:]))),
		Passed: fromNano(int64(binary.BigEndian.Uint64(b[16:]))),
		Count:  int(binary.BigEndian.Uint64(b[24:])),
	}
	return r, time.Unix(0, int64(binary.BigEndian.Uint64(b))), nil
}

// decodeKey is decode for the record stored under key: the fourth word of
// a triplet's ("t|...") is its Ready time, of a client's its Count; a
// triplet's record also keeps its expiry.
func decodeKey(key string, b []byte) (Record, time.Time, error) {
	r, exp, err := decode(b)
	if err == nil && strings.HasPrefix(key, "t|") {
		r.Ready, r.Count, r.expires = fromNano(int64(r.Count)), 0, exp
	}
	return r, exp, err
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Get implements Store.
func (s *BoltStore) Get(_ context.Context, key string) (Record, bool, error) {
	var r Record
	var exp time.Time
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(key))
		if v == nil {
			return nil
		}
		var err error
		r, exp, err = decodeKey(key, v)
		found = err == nil
		return err
	})
	if err != nil || !found || !s.now().Before(exp) {
		return Record{}, false, err
	}
	return r, true, nil
}

// Put implements Store.
func (s *BoltStore) Put(_ context.Context, key string, r Record, expires time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(key), encode(r, expires))
	})
}

// Incr implements Store, in one bbolt transaction.
func (s *BoltStore) Incr(_ context.Context, key string, now, expires time.Time, gap time.Duration) (int, error) {
	var n int
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		r := Record{First: now}
		if v := b.Get([]byte(key)); v != nil {
			if old, exp, err := decode(v); err == nil && s.now().Before(exp) {
				r = old
			}
		}
		if due(r.Passed, now, gap) {
			r.Count++
			r.Passed = now
		}
		n = r.Count
		return b.Put([]byte(key), encode(r, expires))
	})
	return n, err
}

// due reports whether a client last counted at last is counted again at
// now: it never was (last zero; so too in the records written while every
// pass counted, which kept no time), or last is gap or more before now,
// or more than gap after it. That last is a clock since set back: waiting
// for the clock to catch up would count nothing for as long. Less than gap
// after now is, more likely, another gateway's clock a little ahead of ours.
func due(last, now time.Time, gap time.Duration) bool {
	return last.IsZero() || !last.After(now.Add(-gap)) || last.After(now.Add(gap))
}

// sweepBatch is how many expired records one write transaction of Sweep
// deletes: writers (Put, Incr) wait at most for one batch.
const sweepBatch = 1000

// Sweep deletes expired records and returns how many. It finds them in
// read transactions, which do not hold up writers, and deletes them
// sweepBatch at a time, each batch in a write transaction of its own that
// checks again that the record is still expired (a check may have renewed
// it meanwhile).
func (s *BoltStore) Sweep() (int, error) {
	now := s.now()
	n := 0
	var after []byte // the last key looked at
	for {
		var dead [][]byte
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(dead) < sweepBatch; k, v = c.Next() {
				if expired(v, now) {
					dead = append(dead, append([]byte(nil), k...))
				}
				after = append(after[:0], k...)
			}
			return nil
		})
		if err != nil || len(dead) == 0 {
			return n, err
		}
		err = s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			for _, k := range dead {
				if !expired(b.Get(k), now) {
					continue
				}
				if err := b.Delete(k); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return n, err
		}
	}
}

// expired: a record that does not decode, or whose time is up (a nil v, a
// record gone meanwhile, is not).
func expired(v []byte, now time.Time) bool {
	if v == nil {
		return false
	}
	_, exp, err := decode(v)
	return err != nil || !now.Before(exp)
}

func (s *BoltStore) Close() error { return s.db.Close() }
