package bayes

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// update runs fn in one read-write transaction on the file, then drops the
// in-memory snapshot so the next read sees the change.
func (s *BoltStore) update(fn func(tx *bolt.Tx) error) error {
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("bayes: open %s: %w", s.path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketTokens, bucketMsgs, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return fn(tx)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	s.mu.Lock()
	s.loaded = false
	s.mu.Unlock()
	return err
}

// Learn implements Store: in one transaction, each message is added, moved
// from the other class (its token counts and the totals are taken back
// first), or left alone when already learned as this class.
func (s *BoltStore) Learn(_ context.Context, batch []Learned, now time.Time) ([]Outcome, error) {
	out := make([]Outcome, len(batch))
	stamp := unix32(now)
	err := s.update(func(tx *bolt.Tx) error {
		toks, msgs, meta := tx.Bucket(bucketTokens), tx.Bucket(bucketMsgs), tx.Bucket(bucketMeta)
		totals := decodeTotals(meta.Get([]byte("totals")))
		for i, l := range batch {
			class := classByte(l.Spam)
			prev := msgs.Get(l.Hash[:])
			switch {
			case len(prev) > 0 && prev[0] == class:
				out[i] = Unchanged
				continue
			case len(prev) > 0:
				if err := addCounts(toks, l.Keys, !l.Spam, -1, stamp); err != nil {
					return err
				}
				bump(&totals, !l.Spam, -1)
				out[i] = Moved
			default:
				out[i] = Added
			}
			if err := addCounts(toks, l.Keys, l.Spam, 1, stamp); err != nil {
				return err
			}
			bump(&totals, l.Spam, 1)
			rec := make([]byte, 5)
			rec[0] = class
			binary.BigEndian.PutUint32(rec[1:], stamp)
			if err := msgs.Put(l.Hash[:], rec); err != nil {
				return err
			}
		}
		if err := meta.Put([]byte("totals"), encodeTotals(totals)); err != nil {
			return err
		}
		return meta.Put([]byte("learned"), binary.BigEndian.AppendUint32(nil, stamp))
	})
	return out, err
}

// addCounts adds d to the class count of every key and stamps it as seen.
// A token whose counts both reach zero is deleted.
func addCounts(b *bolt.Bucket, keys []Key, spam bool, d int, stamp uint32) error {
	var k [8]byte
	for _, key := range keys {
		binary.BigEndian.PutUint64(k[:], uint64(key))
		var c Count
		if v := b.Get(k[:]); len(v) >= 8 {
			c = Count{binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:])}
		}
		if spam {
			c.Spam = addClamp(c.Spam, d)
		} else {
			c.Ham = addClamp(c.Ham, d)
		}
		if c.Spam == 0 && c.Ham == 0 {
			if err := b.Delete(k[:]); err != nil {
				return err
			}
			continue
		}
		v := make([]byte, 12)
		binary.BigEndian.PutUint32(v, c.Spam)
		binary.BigEndian.PutUint32(v[4:], c.Ham)
		binary.BigEndian.PutUint32(v[8:], stamp)
		if err := b.Put(k[:], v); err != nil {
			return err
		}
	}
	return nil
}

func addClamp(v uint32, d int) uint32 {
	if d < 0 && v < uint32(-d) {
		return 0
	}
	return uint32(int64(v) + int64(d))
}

func bump(t *Totals, spam bool, d int) {
	if spam {
		t.Spam = addClamp(t.Spam, d)
	} else {
		t.Ham = addClamp(t.Ham, d)
	}
}

func classByte(spam bool) byte {
	if spam {
		return 's'
	}
	return 'h'
}

func unix32(t time.Time) uint32 {
	u := t.Unix()
	if u < 0 {
		return 0
	}
	return uint32(u)
}

// Expire implements Store: tokens not seen since cutoff are deleted. The
// message totals stay, as in SpamAssassin's expiry: they count messages,
// and old rare tokens carry little evidence either way.
func (s *BoltStore) Expire(_ context.Context, cutoff time.Time) (int, error) {
	limit := unix32(cutoff)
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketTokens).Cursor()
		for k, v := c.First(); k != nil; {
			if len(v) >= 12 && binary.BigEndian.Uint32(v[8:]) < limit {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
				k, v = c.Seek(k)
				continue
			}
			k, v = c.Next()
		}
		return nil
	})
	return n, err
}

// Stats implements Store.
func (s *BoltStore) Stats(context.Context) (Stats, error) {
	var st Stats
	fi, err := os.Stat(s.path)
	if os.IsNotExist(err) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	st.Bytes = fi.Size()
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return st, fmt.Errorf("bayes: open %s: %w", s.path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketTokens); b != nil {
			st.Tokens = b.Stats().KeyN
		}
		if b := tx.Bucket(bucketMsgs); b != nil {
			st.Messages = b.Stats().KeyN
		}
		if m := tx.Bucket(bucketMeta); m != nil {
			st.Totals = decodeTotals(m.Get([]byte("totals")))
			if v := m.Get([]byte("learned")); len(v) == 4 {
				st.LastLearn = time.Unix(int64(binary.BigEndian.Uint32(v)), 0).UTC()
			}
		}
		return nil
	})
	return st, err
}
