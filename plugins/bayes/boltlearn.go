package bayes

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// update runs fn in one read-write transaction on the file, then marks
// what is in memory stale, so the next read sees the change.
func (s *BoltStore) update(fn func(tx *bolt.Tx) error) error {
	db, err := openDB(s.path, &bolt.Options{NoSync: s.noSync})
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketTokens, bucketMsgs, bucketMeta, bucketGrams} {
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
	s.gen++
	s.mu.Unlock()
	return err
}

// Learn implements Store: in one transaction, each message is added, moved
// from the other class (its token counts and the totals are taken back
// first), or left alone when already learned as this class. Token changes
// of the whole batch are summed first and written in key order, once per
// token: far fewer B+tree writes than one per token per message.
func (s *BoltStore) Learn(_ context.Context, batch []Learned, now time.Time) ([]Outcome, error) {
	out := make([]Outcome, len(batch))
	stamp := unix32(now)
	err := s.update(func(tx *bolt.Tx) error {
		toks, msgs, meta := tx.Bucket(bucketTokens), tx.Bucket(bucketMsgs), tx.Bucket(bucketMeta)
		totals := decodeTotals(meta.Get([]byte("totals")))
		learned, err := messageTotals(tx)
		if err != nil {
			return err
		}
		if meta.Get([]byte("hash")) == nil {
			// A new store gets this build's hashes; one learned before
			// the marker keeps older ones among them and stays unmarked.
			if k, _ := msgs.Cursor().First(); k == nil {
				if err := meta.Put([]byte("hash"), []byte{hashVersion}); err != nil {
					return err
				}
			}
		}
		deltas := map[Key]*delta{}
		for i, l := range batch {
			prevSpam, weight, known := decodeMsg(msgs.Get(l.Hash[:]))
			switch {
			case known && prevSpam == l.Spam && !l.Reinforce:
				out[i] = Unchanged
				continue
			case known && prevSpam == l.Spam:
				out[i] = Reinforced
				weight++
			case known:
				addDeltas(deltas, l.Keys, prevSpam, -weight)
				bump(&totals, prevSpam, -weight)
				bump(&learned, prevSpam, -1)
				bump(&learned, l.Spam, 1)
				out[i], weight = Moved, 1
			default:
				bump(&learned, l.Spam, 1)
				out[i], weight = Added, 1
			}
			addDeltas(deltas, l.Keys, l.Spam, 1)
			bump(&totals, l.Spam, 1)
			if err := msgs.Put(l.Hash[:], encodeMsg(l.Spam, weight, stamp)); err != nil {
				return err
			}
		}
		if err := applyDeltas(toks, deltas, stamp); err != nil {
			return err
		}
		if err := meta.Put([]byte("totals"), encodeTotals(totals)); err != nil {
			return err
		}
		if err := meta.Put([]byte("messages"), encodeTotals(learned)); err != nil {
			return err
		}
		return meta.Put([]byte("learned"), binary.BigEndian.AppendUint32(nil, stamp))
	})
	return out, err
}

// messageTotals is the number of distinct messages learned as each class
// (what min_spam and min_ham count), kept beside the counted totals since
// train-on-error counts a message more than once; a file from before that
// is counted from its message records.
func messageTotals(tx *bolt.Tx) (Totals, error) {
	var t Totals
	if m := tx.Bucket(bucketMeta); m != nil {
		if v := m.Get([]byte("messages")); v != nil {
			return decodeTotals(v), nil
		}
	}
	b := tx.Bucket(bucketMsgs)
	if b == nil {
		return t, nil
	}
	err := b.ForEach(func(_, v []byte) error {
		if spam, _, ok := decodeMsg(v); ok {
			bump(&t, spam, 1)
		}
		return nil
	})
	return t, err
}

// delta is the change of one token's counts within a batch.
type delta struct{ spam, ham int }

func addDeltas(m map[Key]*delta, keys []Key, spam bool, d int) {
	for _, k := range keys {
		x := m[k]
		if x == nil {
			x = &delta{}
			m[k] = x
		}
		if spam {
			x.spam += d
		} else {
			x.ham += d
		}
	}
}

// applyDeltas writes the summed changes in key order and stamps each token
// as seen. A token whose counts both reach zero is deleted.
func applyDeltas(b *bolt.Bucket, m map[Key]*delta, stamp uint32) error {
	keys := make([]Key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var kb [8]byte
	for _, key := range keys {
		d := m[key]
		binary.BigEndian.PutUint64(kb[:], uint64(key))
		var c Count
		if v := b.Get(kb[:]); len(v) >= 8 {
			c = Count{binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:])}
		}
		c.Spam, c.Ham = addClamp(c.Spam, d.spam), addClamp(c.Ham, d.ham)
		if c.Spam == 0 && c.Ham == 0 {
			if err := b.Delete(kb[:]); err != nil {
				return err
			}
			continue
		}
		v := make([]byte, 12)
		binary.BigEndian.PutUint32(v, c.Spam)
		binary.BigEndian.PutUint32(v[4:], c.Ham)
		binary.BigEndian.PutUint32(v[8:], stamp)
		if err := b.Put(kb[:], v); err != nil {
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

// A message record is its class ('s' or 'h'), when it was last learned
// (unix u32) and its weight (u16, how many times it is counted).
func encodeMsg(spam bool, weight int, stamp uint32) []byte {
	rec := make([]byte, 7)
	rec[0] = 'h'
	if spam {
		rec[0] = 's'
	}
	binary.BigEndian.PutUint32(rec[1:], stamp)
	binary.BigEndian.PutUint16(rec[5:], uint16(min(weight, 0xffff)))
	return rec
}

func decodeMsg(v []byte) (spam bool, weight int, known bool) {
	if len(v) == 0 {
		return false, 0, false
	}
	weight = 1
	if len(v) >= 7 {
		weight = int(binary.BigEndian.Uint16(v[5:]))
	}
	return v[0] == 's', weight, true
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
	err = s.readTx(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketTokens); b != nil {
			st.Tokens = b.Stats().KeyN
		}
		if b := tx.Bucket(bucketMsgs); b != nil {
			err := b.ForEach(func(_, v []byte) error {
				if spam, _, ok := decodeMsg(v); ok && spam {
					st.SpamMessages++
				} else if ok {
					st.HamMessages++
				}
				st.Messages++
				return nil
			})
			if err != nil {
				return err
			}
		}
		if g := tx.Bucket(bucketGrams); g != nil {
			if len(g.Get([]byte("w"))) == 4*gramTable {
				st.GramModel = decodeTotals(g.Get([]byte("n")))
			}
		}
		if m := tx.Bucket(bucketMeta); m != nil {
			st.Totals = decodeTotals(m.Get([]byte("totals")))
			if v := m.Get([]byte("hash")); v != nil && st.Messages > 0 && (len(v) != 1 || v[0] != hashVersion) {
				st.OldHashes = true
			}
			if v := m.Get([]byte("learned")); len(v) == 4 {
				st.LastLearn = time.Unix(int64(binary.BigEndian.Uint32(v)), 0).UTC()
			}
		}
		return nil
	})
	return st, err
}

// Trim keeps the store's size bounded: when it holds more than max tokens,
// it deletes tokens down to three quarters of max (so that it is not at
// the bound again after the next message), those with the least evidence
// first: tokens seen in one message, then two, then the rest, the least
// recently learned first within each. Classification only ever uses tokens
// seen in three or more messages (with the default MinDev), so trimming
// the single and double sightings costs nothing today and only slows the
// learning of rare words. The totals stay, as with Expire. It reports how
// many tokens it deleted; max 0 never trims.
func (s *BoltStore) Trim(_ context.Context, max int) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	if n, err := s.tokenCount(); err != nil || n <= max {
		return 0, err
	}
	deleted := 0
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		type entry struct {
			class, seen uint32
			key         [8]byte
		}
		var all []entry
		err := b.ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) < 12 {
				return nil
			}
			n := uint64(binary.BigEndian.Uint32(v)) + uint64(binary.BigEndian.Uint32(v[4:]))
			e := entry{class: uint32(min(n, 3)), seen: binary.BigEndian.Uint32(v[8:])}
			copy(e.key[:], k)
			all = append(all, e)
			return nil
		})
		if err != nil || len(all) <= max {
			return err
		}
		slices.SortFunc(all, func(a, b entry) int {
			if a.class != b.class {
				return cmp.Compare(a.class, b.class)
			}
			if a.seen != b.seen {
				return cmp.Compare(a.seen, b.seen)
			}
			return bytes.Compare(a.key[:], b.key[:])
		})
		drop := all[:len(all)-max*3/4]
		slices.SortFunc(drop, func(a, b entry) int { return bytes.Compare(a.key[:], b.key[:]) })
		for _, e := range drop {
			if err := b.Delete(e.key[:]); err != nil {
				return err
			}
		}
		deleted = len(drop)
		return nil
	})
	return deleted, err
}

// tokenCount is the number of tokens in the file (0 if there is none).
func (s *BoltStore) tokenCount() (int, error) {
	if _, err := os.Stat(s.path); os.IsNotExist(err) {
		return 0, nil
	}
	n := 0
	err := s.readTx(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketTokens); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n, err
}
