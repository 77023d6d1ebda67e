package bayes

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Buckets of the bbolt file.
var (
	bucketTokens = []byte("tokens") // Key (8 bytes BE) -> spam u32, ham u32, last-seen unix u32
	bucketMsgs   = []byte("msgs")   // MsgHash -> class byte ('s'/'h'), learned unix u32
	bucketMeta   = []byte("meta")   // "totals" -> spam u32, ham u32; "learned" -> unix u32
)

// lockTimeout bounds how long a reader or writer waits for bbolt's file
// lock held by another process (the CLI learning a big corpus holds it for
// one batch at a time).
const lockTimeout = 10 * time.Second

// BoltStore is a Store in one bbolt file. It does not keep the file open:
// readers load every count into memory and reload when the file changes,
// writers open it for one batch. So `portcullis bayes learn` can write
// while the daemon classifies, without either holding bbolt's lock for long.
type BoltStore struct {
	path   string
	noSync bool // tests only: skip fsync

	mu      sync.Mutex
	counts  map[Key]Count
	totals  Totals
	loadedM time.Time // modification time and size of the file when loaded
	loadedS int64
	loaded  bool
}

var _ Store = (*BoltStore)(nil)

// OpenBolt returns the store in file path (created on first learn).
func OpenBolt(path string) (*BoltStore, error) {
	if path == "" {
		return nil, errors.New("bayes: no state file (set state.path)")
	}
	return &BoltStore{path: path}, nil
}

// Path is the bbolt file.
func (s *BoltStore) Path() string { return s.path }

// refresh reloads the counts when the file changed since the last load.
func (s *BoltStore) refresh() error {
	st, err := os.Stat(s.path)
	if errors.Is(err, os.ErrNotExist) {
		s.counts, s.totals, s.loaded = map[Key]Count{}, Totals{}, true
		s.loadedM, s.loadedS = time.Time{}, 0
		return nil
	}
	if err != nil {
		return err
	}
	if s.loaded && st.ModTime().Equal(s.loadedM) && st.Size() == s.loadedS {
		return nil
	}
	counts, totals, err := s.load()
	if err != nil {
		return err
	}
	s.counts, s.totals, s.loaded = counts, totals, true
	s.loadedM, s.loadedS = st.ModTime(), st.Size()
	return nil
}

func (s *BoltStore) load() (map[Key]Count, Totals, error) {
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return nil, Totals{}, fmt.Errorf("bayes: open %s: %w", s.path, err)
	}
	defer db.Close()
	var counts map[Key]Count
	var totals Totals
	err = db.View(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			totals = decodeTotals(m.Get([]byte("totals")))
		}
		b := tx.Bucket(bucketTokens)
		if b == nil {
			counts = map[Key]Count{}
			return nil
		}
		counts = make(map[Key]Count, b.Stats().KeyN)
		return b.ForEach(func(k, v []byte) error {
			if len(k) == 8 && len(v) >= 8 {
				counts[Key(binary.BigEndian.Uint64(k))] = Count{binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:])}
			}
			return nil
		})
	})
	return counts, totals, err
}

// Totals implements Store.
func (s *BoltStore) Totals(context.Context) (Totals, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refresh(); err != nil {
		return Totals{}, err
	}
	return s.totals, nil
}

// Lookup implements Store.
func (s *BoltStore) Lookup(_ context.Context, keys []Key, out []Count) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refresh(); err != nil {
		return err
	}
	for i, k := range keys {
		out[i] = s.counts[k]
	}
	return nil
}

// snapshot returns the in-memory counts for fast lock-free-ish scoring.
func (s *BoltStore) snapshot() (map[Key]Count, Totals, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refresh(); err != nil {
		return nil, Totals{}, err
	}
	return s.counts, s.totals, nil
}

// Close implements Store.
func (s *BoltStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts, s.loaded = nil, false
	return nil
}

func decodeTotals(v []byte) Totals {
	if len(v) < 8 {
		return Totals{}
	}
	return Totals{binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:])}
}

func encodeTotals(t Totals) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b, t.Spam)
	binary.BigEndian.PutUint32(b[4:], t.Ham)
	return b
}
