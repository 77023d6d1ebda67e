package bayes

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestBoltStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.bayes.db")
	st, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if tot, err := st.Totals(ctx); err != nil || tot != (Totals{}) {
		t.Fatalf("empty store: %v %v", tot, err)
	}
	now := time.Unix(1_800_000_000, 0)
	batch := []Learned{
		{Hash: MsgHash{1}, Keys: []Key{10, 20}, Spam: true},
		{Hash: MsgHash{2}, Keys: []Key{20, 30}, Spam: false},
		{Hash: MsgHash{3}, Keys: []Key{20}, Spam: true},
	}
	out, err := st.Learn(ctx, batch, now)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if o != Added {
			t.Errorf("message %d: %v, want added", i, o)
		}
	}
	// A second handle sees what the first wrote: the state is in the file.
	st2, _ := OpenBolt(path)
	got := make([]Count, 4)
	if err := st2.Lookup(ctx, []Key{10, 20, 30, 40}, got); err != nil {
		t.Fatal(err)
	}
	want := []Count{{1, 0}, {2, 1}, {0, 1}, {0, 0}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("key %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if tot, _ := st2.Totals(ctx); tot != (Totals{Spam: 2, Ham: 1}) {
		t.Errorf("totals %+v", tot)
	}
	stats, err := st2.Stats(ctx)
	if err != nil || stats.Tokens != 3 || stats.Messages != 3 || stats.Bytes == 0 || !stats.LastLearn.Equal(now) {
		t.Errorf("stats %+v %v", stats, err)
	}
}

func TestBoltStoreRelearn(t *testing.T) {
	ctx := context.Background()
	st, _ := OpenBolt(filepath.Join(t.TempDir(), "s.db"))
	now := time.Unix(1_800_000_000, 0)
	msg := Learned{Hash: MsgHash{7}, Keys: []Key{1, 2}, Spam: true}
	steps := []struct {
		name   string
		spam   bool
		want   Outcome
		totals Totals
		count  Count // of key 1
	}{
		{"first as spam", true, Added, Totals{1, 0}, Count{1, 0}},
		{"again as spam: not counted twice", true, Unchanged, Totals{1, 0}, Count{1, 0}},
		{"as ham: moves", false, Moved, Totals{0, 1}, Count{0, 1}},
		{"as ham again", false, Unchanged, Totals{0, 1}, Count{0, 1}},
		{"back to spam", true, Moved, Totals{1, 0}, Count{1, 0}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			msg.Spam = s.spam
			out, err := st.Learn(ctx, []Learned{msg}, now)
			if err != nil || out[0] != s.want {
				t.Fatalf("outcome %v %v, want %v", out, err, s.want)
			}
			tot, _ := st.Totals(ctx)
			c := make([]Count, 1)
			_ = st.Lookup(ctx, []Key{1}, c)
			if tot != s.totals || c[0] != s.count {
				t.Errorf("totals %+v count %+v, want %+v %+v", tot, c[0], s.totals, s.count)
			}
		})
	}
	// The same message twice in one batch counts once.
	out, _ := st.Learn(ctx, []Learned{{Hash: MsgHash{8}, Keys: []Key{5}}, {Hash: MsgHash{8}, Keys: []Key{5}}}, now)
	if out[0] != Added || out[1] != Unchanged {
		t.Errorf("duplicate in batch: %v", out)
	}
}

func TestBoltStoreExpire(t *testing.T) {
	ctx := context.Background()
	st, _ := OpenBolt(filepath.Join(t.TempDir(), "s.db"))
	old, recent := time.Unix(1_700_000_000, 0), time.Unix(1_800_000_000, 0)
	if _, err := st.Learn(ctx, []Learned{{Hash: MsgHash{1}, Keys: []Key{1, 2, 3}, Spam: true}}, old); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Learn(ctx, []Learned{{Hash: MsgHash{2}, Keys: []Key{3}, Spam: false}}, recent); err != nil {
		t.Fatal(err)
	}
	n, err := st.Expire(ctx, recent.Add(-time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("expired %d %v, want 2", n, err)
	}
	c := make([]Count, 3)
	_ = st.Lookup(ctx, []Key{1, 2, 3}, c)
	if c[0] != (Count{}) || c[1] != (Count{}) || c[2] != (Count{1, 1}) {
		t.Errorf("after expiry: %+v", c)
	}
}

// TestBoltStoreClassifyView: the classifying view holds exactly the tokens
// Score would use under the current totals, follows the file when another
// handle learns, and classifying through it scores as the full counts do.
func TestBoltStoreClassifyView(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.bayes.db")
	w, _ := OpenBolt(path)
	w.noSync = true
	var batch []Learned
	// Key 1 in 4 spam: strong. Key 2 in one spam: too rare for MinDev 0.45.
	// Key 3 in 4 ham: strong. Key 4 in 2 spam and 2 ham: neutral.
	for i := 0; i < 4; i++ {
		batch = append(batch,
			Learned{Hash: MsgHash{1, byte(i)}, Keys: []Key{1, 4}, Spam: true},
			Learned{Hash: MsgHash{2, byte(i)}, Keys: []Key{3}, Spam: false})
	}
	batch[0].Keys = append(batch[0].Keys, 2)
	batch[1].Keys = append(batch[1].Keys, 4)
	batch[3].Keys = append(batch[3].Keys, 4)
	if _, err := w.Learn(ctx, batch, time.Unix(1_800_000_000, 0)); err != nil {
		t.Fatal(err)
	}
	r, _ := OpenBolt(path)
	p := DefaultParams()
	view, totals, err := r.snapshot(p)
	if err != nil {
		t.Fatal(err)
	}
	if totals != (Totals{Spam: 4, Ham: 4}) || len(view) != 2 || view[1] != (Count{Spam: 4}) || view[3] != (Count{Ham: 4}) {
		t.Fatalf("view %v totals %+v, want keys 1 and 3 of 4/4", view, totals)
	}
	// With no minimum deviation every token counts.
	all := p
	all.MinDev = 0
	if view, _, _ := r.snapshot(all); len(view) != 4 {
		t.Errorf("MinDev 0: view %v, want all 4 keys", view)
	}
	// Another handle learns 12 ham with key 1: key 1 is no longer strong.
	batch = batch[:0]
	for i := 0; i < 12; i++ {
		batch = append(batch, Learned{Hash: MsgHash{3, byte(i)}, Keys: []Key{1, 5}, Spam: false})
	}
	if _, err := w.Learn(ctx, batch, time.Unix(1_800_000_100, 0)); err != nil {
		t.Fatal(err)
	}
	view, totals, _ = r.snapshot(p)
	if _, ok := view[1]; ok || totals != (Totals{Spam: 4, Ham: 16}) || view[5] != (Count{Ham: 12}) {
		t.Errorf("after learning: view %v totals %+v", view, totals)
	}
	keys := []Key{1, 2, 3, 4, 5, 6}
	full := make([]Count, len(keys))
	if err := r.Lookup(ctx, keys, full); err != nil {
		t.Fatal(err)
	}
	want, wantN := p.Score(full, totals.Spam, totals.Ham)
	got, tot, _, _, _, err := lookup(ctx, r, p, keys)
	if err != nil || tot != totals {
		t.Fatal(err, tot)
	}
	if s, n := p.Score(got, tot.Spam, tot.Ham); s != want || n != wantN {
		t.Errorf("through the view %v from %d tokens, full counts %v from %d", s, n, want, wantN)
	}
}

// TestBoltStoreViewRebuildDoesNotBlock: while one caller rebuilds the
// classifying view after the file changed, the others get the previous
// view at once; the rebuilt view is then kept. A message learned through
// the same handle is seen by the next snapshot.
func TestBoltStoreViewRebuildDoesNotBlock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.bayes.db")
	w, _ := OpenBolt(path)
	w.noSync = true
	learn := func(st *BoltStore, tag byte, n int) {
		t.Helper()
		var batch []Learned
		for i := 0; i < n; i++ {
			batch = append(batch, Learned{Hash: MsgHash{tag, byte(i)}, Keys: []Key{Key(tag)}, Spam: true})
		}
		if _, err := st.Learn(ctx, batch, time.Unix(1_800_000_000, 0)); err != nil {
			t.Fatal(err)
		}
	}
	learn(w, 1, 4)
	r, _ := OpenBolt(path)
	r.noSync = true
	p := DefaultParams()
	if _, tot, err := r.snapshot(p); err != nil || tot.Spam != 4 {
		t.Fatalf("first view: %+v %v", tot, err)
	}
	learn(w, 2, 5) // another handle: the file changes under r

	entered, release := make(chan struct{}), make(chan struct{})
	builds := 0
	r.mu.Lock()
	r.onBuild = func() { builds++; entered <- struct{}{}; <-release }
	r.mu.Unlock()
	rebuilt := make(chan Totals)
	go func() {
		_, tot, _ := r.snapshot(p)
		rebuilt <- tot
	}()
	<-entered
	other := make(chan Totals)
	go func() {
		_, tot, _ := r.snapshot(p)
		other <- tot
	}()
	select {
	case tot := <-other:
		if tot.Spam != 4 {
			t.Errorf("during the rebuild: totals %+v, want the previous view's 4 spam", tot)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a caller waited for another's rebuild")
	}
	close(release)
	if tot := <-rebuilt; tot.Spam != 9 {
		t.Errorf("rebuilt view: totals %+v, want 9 spam", tot)
	}
	r.mu.Lock()
	r.onBuild = func() { builds++ }
	r.mu.Unlock()
	if _, tot, _ := r.snapshot(p); tot.Spam != 9 || builds != 1 {
		t.Errorf("after the rebuild: totals %+v, %d builds; want 9 spam from the kept view", tot, builds)
	}
	learn(r, 3, 2) // through r itself
	if m, tot, _ := r.snapshot(p); tot.Spam != 11 || builds != 2 || m[3] != (Count{}) {
		t.Errorf("after learning through r: totals %+v, %d builds, view %v", tot, builds, m)
	}
}

// TestBoltStoreTrim: over max tokens, Trim deletes down to 3/4 of max,
// tokens seen in one message first (the least recently learned first),
// then those seen in two; tokens with more evidence go last. Totals stay.
func TestBoltStoreTrim(t *testing.T) {
	ctx := context.Background()
	st, _ := OpenBolt(filepath.Join(t.TempDir(), "s.db"))
	st.noSync = true
	t0 := time.Unix(1_800_000_000, 0)
	learn := func(tag byte, keys []Key, at time.Time) {
		t.Helper()
		if _, err := st.Learn(ctx, []Learned{{Hash: MsgHash{tag}, Keys: keys, Spam: tag%2 == 0}}, at); err != nil {
			t.Fatal(err)
		}
	}
	// Keys 7 and 8 in five messages, learned first (the oldest); 5 and 6
	// in two; 1-4 in one each, an hour apart, 4 the most recent.
	for i := byte(0); i < 5; i++ {
		learn(10+i, []Key{7, 8}, t0)
	}
	learn(20, []Key{5, 6}, t0.Add(time.Hour))
	learn(21, []Key{5, 6}, t0.Add(time.Hour))
	for i := 0; i < 4; i++ {
		learn(byte(30+i), []Key{Key(1 + i)}, t0.Add(time.Duration(2+i)*time.Hour))
	}
	totals, _ := st.Totals(ctx)
	left := func() []Key {
		t.Helper()
		var keys []Key
		c := make([]Count, 1)
		for k := Key(1); k <= 8; k++ {
			if err := st.Lookup(ctx, []Key{k}, c); err != nil {
				t.Fatal(err)
			}
			if c[0] != (Count{}) {
				keys = append(keys, k)
			}
		}
		return keys
	}
	steps := []struct {
		max, deleted int
		left         []Key
	}{
		{8, 0, []Key{1, 2, 3, 4, 5, 6, 7, 8}}, // not over
		{7, 3, []Key{4, 5, 6, 7, 8}},          // to 5: the three oldest single sightings
		{4, 2, []Key{6, 7, 8}},                // to 3: the last single one, then 5 (ties with 6 on time, lower key)
		{0, 0, []Key{6, 7, 8}},                // 0: never
		{1, 3, nil},                           // to 0
	}
	for _, s := range steps {
		n, err := st.Trim(ctx, s.max)
		if err != nil || n != s.deleted {
			t.Fatalf("Trim(%d): %d deleted, %v; want %d", s.max, n, err, s.deleted)
		}
		if got := left(); !slices.Equal(got, s.left) {
			t.Fatalf("after Trim(%d): keys %v, want %v", s.max, got, s.left)
		}
	}
	if tot, _ := st.Totals(ctx); tot != totals {
		t.Errorf("totals %+v after trimming, want %+v", tot, totals)
	}
}

// TestBoltStoreOldHashes: a new store is marked with this build's hash
// form; one marked with another form (as a store of this build will be
// once the form changes again) is reported by Stats, as it does not
// recognise its old messages again, and learning more keeps its mark. A
// store from before the mark is taken as this form (no report).
func TestBoltStoreOldHashes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	if _, err := st.Learn(ctx, []Learned{{Hash: MsgHash{1}, Keys: []Key{1}, Spam: true}}, now); err != nil {
		t.Fatal(err)
	}
	if s, _ := st.Stats(ctx); s.OldHashes {
		t.Fatal("a store this build made reads as an old one")
	}
	setMark := func(v []byte) {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Update(func(tx *bolt.Tx) error {
			if v == nil {
				return tx.Bucket(bucketMeta).Delete([]byte("hash"))
			}
			return tx.Bucket(bucketMeta).Put([]byte("hash"), v)
		}); err != nil {
			t.Fatal(err)
		}
	}
	setMark([]byte{hashVersion - 1})
	if _, err := st.Learn(ctx, []Learned{{Hash: MsgHash{2}, Keys: []Key{2}}}, now); err != nil {
		t.Fatal(err)
	}
	if s, _ := st.Stats(ctx); !s.OldHashes {
		t.Error("a store marked with another hash form, learned into, reads as this build's")
	}
	setMark(nil)
	if s, _ := st.Stats(ctx); s.OldHashes {
		t.Error("a store from before the mark reads as old")
	}
}

// TestBoltStoreFileBeingCreated: a reader that finds the file at the
// moment a writer has created it and not yet written bbolt's first pages
// (0 bytes) reads an empty store. bbolt opened read-only would set an
// empty file up itself, and fail ("write ...: bad file descriptor"): a
// message classified while the first learn_spam of a gateway wrote the
// file got 451 (seen in CI, TestE2ELearnActions).
func TestBoltStoreFileBeingCreated(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.bayes.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if tot, err := st.Totals(ctx); err != nil || tot != (Totals{}) {
		t.Errorf("totals %+v, %v; want an empty store", tot, err)
	}
	got := make([]Count, 1)
	if err := st.Lookup(ctx, []Key{10}, got); err != nil || got[0] != (Count{}) {
		t.Errorf("lookup %+v, %v", got, err)
	}
	if w, n, err := st.Grams(ctx); err != nil || w != nil || n != (Totals{}) {
		t.Errorf("grams %v %+v, %v", w != nil, n, err)
	}
	if _, err := st.classifying(DefaultParams()); err != nil {
		t.Errorf("classifying view: %v", err)
	}
	if stats, err := st.Stats(ctx); err != nil || stats.Tokens != 0 {
		t.Errorf("stats %+v, %v", stats, err)
	}
	// The writer's own open sets the file up as usual.
	if _, err := st.Learn(ctx, []Learned{{Hash: MsgHash{1}, Keys: []Key{10}, Spam: true}}, time.Unix(1_800_000_000, 0)); err != nil {
		t.Fatal(err)
	}
	if tot, err := st.Totals(ctx); err != nil || tot != (Totals{Spam: 1}) {
		t.Errorf("after learning: totals %+v, %v", tot, err)
	}
}
