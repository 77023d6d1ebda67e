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
	berrors "go.etcd.io/bbolt/errors"

	"github.com/portcullis-mta/portcullis/sdk"
)

// Buckets of the bbolt file.
var (
	bucketTokens = []byte("tokens") // Key (8 bytes BE) -> spam u32, ham u32, last-seen unix u32
	bucketMsgs   = []byte("msgs")   // MsgHash -> class byte ('s'/'h'), learned unix u32
	bucketMeta   = []byte("meta")   // "totals" -> spam u32, ham u32; "learned" -> unix u32; "hash" -> hashVersion
	bucketGrams  = []byte("grams")  // "w" -> the gram model's Weights (encodeWeights); "n" -> spam u32, ham u32 learned
)

// lockTimeout bounds how long a reader or writer waits for bbolt's file
// lock held by another process (the CLI learning a big corpus holds it for
// one batch at a time). A variable for tests.
var lockTimeout = 10 * time.Second

// openDB opens the file with bbolt's lock, saying plainly when another
// process held it for all of lockTimeout (bbolt's own "timeout" does not
// say what timed out).
func openDB(path string, opts *bolt.Options) (*bolt.DB, error) {
	if err := sdk.CheckBoltFile(path); err != nil {
		return nil, fmt.Errorf("bayes: %w", err)
	}
	opts.Timeout = lockTimeout
	db, err := bolt.Open(path, 0o600, opts)
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("bayes: %s is locked by another process (a `portcullis bayes learn`, or the daemon learning or trimming) for more than %s; try again: %w", path, lockTimeout, err)
	case err != nil:
		return nil, fmt.Errorf("bayes: open %s: %w", path, err)
	}
	return db, nil
}

// BoltStore is a Store in one bbolt file. It does not keep the file open:
// readers load the counts into memory and reload when the file changes,
// writers open it for one batch. So `portcullis bayes learn` can write
// while the daemon classifies, without either holding bbolt's lock for long.
//
// Classifying needs far less than every count: a token whose probability
// lies within Params.MinDev of 0.5 is ignored by Score, and most tokens of
// a store are such (a token seen in one or two messages never gets past
// the default MinDev). The classifying view (strong) keeps only the tokens
// Score would use under the current totals, so a lookup probes a map a
// fraction of the size; the full map is loaded only for Lookup (training).
//
// Rebuilding the view reads the whole file (about 80 ms for a store
// trained on 4,255 messages). When the file changes (a rule's learn_spam,
// `bayes learn`), the one caller that notices rebuilds it while the others
// go on classifying with the view they have, one learned message behind,
// instead of queueing behind the rebuild.
type BoltStore struct {
	path   string
	noSync bool // tests only: skip fsync

	mu      sync.Mutex
	loadedM time.Time // modification time and size of the file when loaded
	loadedS int64
	loaded  bool // totals (and counts when not nil) match loadedM/loadedS
	totals  Totals
	counts  map[Key]Count // every token, nil until Lookup needs it

	gen      uint64 // learned in this process: bumped by every update
	view     *classifyView
	building bool   // a caller is rebuilding view
	onBuild  func() // tests: called by a rebuild before it reads the file
}

// classifyView is the classifying view and what it was built from.
type classifyView struct {
	counts map[Key]Count // tokens Score would use under params and totals
	grams  Weights       // nil when none were learned
	gramN  Totals        // messages the gram model learned
	totals Totals
	msgs   Totals // distinct messages learned (messageTotals)
	params Params
	mtime  time.Time // the file's when the build started
	size   int64
	gen    uint64
}

var (
	_ Store     = (*BoltStore)(nil)
	_ GramStore = (*BoltStore)(nil)
)

// errNoState is the error for a stage without a state.path.
var errNoState = errors.New("bayes: no state file (set state.path)")

// OpenBolt returns the store in file path (created on first learn).
func OpenBolt(path string) (*BoltStore, error) {
	if path == "" {
		return nil, errNoState
	}
	return &BoltStore{path: path}, nil
}

// Path is the bbolt file.
func (s *BoltStore) Path() string { return s.path }

// refresh forgets what was loaded when the file changed since, and reads
// the totals again. A missing file is an empty store.
func (s *BoltStore) refresh() error {
	st, err := os.Stat(s.path)
	if errors.Is(err, os.ErrNotExist) {
		s.totals, s.loaded, s.counts = Totals{}, true, map[Key]Count{}
		s.loadedM, s.loadedS = time.Time{}, 0
		return nil
	}
	if err != nil {
		return err
	}
	if s.loaded && st.ModTime().Equal(s.loadedM) && st.Size() == s.loadedS {
		return nil
	}
	s.counts, s.loaded = nil, false
	totals, err := s.read(nil, nil, nil, nil)
	if err != nil {
		return err
	}
	s.totals, s.loaded = totals, true
	s.loadedM, s.loadedS = st.ModTime(), st.Size()
	return nil
}

// readTx runs fn in one read transaction on the file, opened read-only for
// just this (see BoltStore). A file of 0 bytes is one a writer has just
// created and not yet set up (it holds bbolt's lock, which it takes after
// creating the file): an empty store, so fn is not run. bbolt opened
// read-only would set it up itself, and fail writing to a read-only file.
func (s *BoltStore) readTx(fn func(tx *bolt.Tx) error) error {
	if st, err := os.Stat(s.path); err == nil && st.Size() == 0 {
		return nil
	}
	db, err := openDB(s.path, &bolt.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(fn)
}

// read returns the totals and, when each is not nil, calls each for every
// token with those totals, and when grams is not nil sets it to the
// weights of the gram model and n to its counts, in one read transaction.
func (s *BoltStore) read(each func(Totals, Key, Count), grams *Weights, n *Totals, msgs *Totals) (Totals, error) {
	var totals Totals
	err := s.readTx(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			totals = decodeTotals(m.Get([]byte("totals")))
		}
		if msgs != nil {
			var err error
			if *msgs, err = messageTotals(tx); err != nil {
				return err
			}
		}
		if g := tx.Bucket(bucketGrams); g != nil && grams != nil {
			*grams, *n = decodeWeights(g.Get([]byte("w"))), decodeTotals(g.Get([]byte("n")))
		}
		b := tx.Bucket(bucketTokens)
		if b == nil || each == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) == 8 && len(v) >= 8 {
				each(totals, Key(binary.BigEndian.Uint64(k)), Count{binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:])})
			}
			return nil
		})
	})
	return totals, err
}

// load reads every count and the totals, consistent with each other.
func (s *BoltStore) load() error {
	counts := map[Key]Count{}
	totals, err := s.read(func(_ Totals, k Key, c Count) { counts[k] = c }, nil, nil, nil)
	if err != nil {
		return err
	}
	s.counts, s.totals = counts, totals
	return nil
}

// full refreshes and makes sure every count is in memory.
func (s *BoltStore) full() error {
	if err := s.refresh(); err != nil {
		return err
	}
	if s.counts != nil {
		return nil
	}
	return s.load()
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
	if err := s.full(); err != nil {
		return err
	}
	for i, k := range keys {
		out[i] = s.counts[k]
	}
	return nil
}

// classifying returns the classifying view for p: the counts of the tokens
// whose probability under p and the current totals Score would use (any
// other token of a message can be left out without changing its score),
// the totals they were judged with and the gram model's weights. When the
// file changed, the caller that notices rebuilds the view; callers
// meanwhile get the previous one.
func (s *BoltStore) classifying(p Params) (*classifyView, error) {
	var mtime time.Time
	var size int64
	st, err := os.Stat(s.path)
	exists := err == nil
	switch {
	case exists:
		mtime, size = st.ModTime(), st.Size()
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	s.mu.Lock()
	v, gen := s.view, s.gen
	usable := v != nil && v.params == p
	if usable && v.mtime.Equal(mtime) && v.size == size && v.gen == gen {
		s.mu.Unlock()
		return v, nil
	}
	if usable && s.building {
		s.mu.Unlock()
		return v, nil // one learned message behind, for the length of a rebuild
	}
	claimed := usable // without a usable view every caller builds its own
	if claimed {
		s.building = true
	}
	hook := s.onBuild
	s.mu.Unlock()

	if hook != nil {
		hook()
	}
	nv := &classifyView{counts: map[Key]Count{}, params: p, mtime: mtime, size: size, gen: gen}
	err = nil // a missing file is an empty store
	if exists {
		nv.totals, err = s.read(func(t Totals, k Key, c Count) {
			if p.counts(c, t.Spam, t.Ham) {
				nv.counts[k] = c
			}
		}, &nv.grams, &nv.gramN, &nv.msgs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if claimed {
		s.building = false
	}
	if err != nil {
		return nil, err
	}
	if s.gen == gen { // not learned in this process since: keep it
		s.view = nv
	}
	return nv, nil
}

// snapshot is classifying's counts and totals.
func (s *BoltStore) snapshot(p Params) (map[Key]Count, Totals, error) {
	v, err := s.classifying(p)
	if err != nil {
		return nil, Totals{}, err
	}
	return v.counts, v.totals, nil
}

// Grams implements GramStore.
func (s *BoltStore) Grams(context.Context) (Weights, Totals, error) {
	if _, err := os.Stat(s.path); errors.Is(err, os.ErrNotExist) {
		return nil, Totals{}, nil
	}
	var w Weights
	var n Totals
	_, err := s.read(nil, &w, &n, nil)
	return w, n, err
}

// LearnGrams implements GramStore: the weights are read, changed and
// written back in one transaction (1 MiB: a learned message rewrites them).
func (s *BoltStore) LearnGrams(_ context.Context, spam, ham int, fn func(Weights)) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGrams)
		w, n := decodeWeights(b.Get([]byte("w"))), decodeTotals(b.Get([]byte("n")))
		if w == nil {
			w, n = make(Weights, gramTable), Totals{}
		}
		fn(w)
		n.Spam, n.Ham = addClamp(n.Spam, spam), addClamp(n.Ham, ham)
		if err := b.Put([]byte("n"), encodeTotals(n)); err != nil {
			return err
		}
		return b.Put([]byte("w"), encodeWeights(w))
	})
}

// Close implements Store.
func (s *BoltStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts, s.view, s.loaded = nil, nil, false
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
