package greylist

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/portcullis-mta/portcullis/sdk"
)

// TestOpenBoltBusy: a state file another process holds (the running
// gateway, when `portcullis scan` starts the stage beside it) is refused
// with words that say so and what to do, not bbolt's bare "timeout".
func TestOpenBoltBusy(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.greylist.db")
	st, err := OpenBolt(p, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = OpenBolt(p, time.Now) // a second open file description: flock conflicts as across processes
	if err == nil || !strings.Contains(err.Error(), "in use by another process") || !strings.Contains(err.Error(), "state.path") {
		t.Errorf("second open: %v", err)
	}
}

// TestOpenBoltDamaged: a state file cut short (a full disk, an interrupted
// copy) is refused at open with an error that names it; bbolt mapped it
// and the plugin died of SIGBUS reading its freelist.
func TestOpenBoltDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "greylist.db")
	s, err := OpenBolt(path, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 4000 {
		if err := s.Put(ctx, fmt.Sprintf("triplet-%d", i), Record{First: time.Now()}, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 0 {
			if _, err := s.Sweep(); err != nil { // frees pages: a freelist to read
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if err := os.Truncate(path, fi.Size()/3); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBolt(path, time.Now); err == nil || !strings.Contains(err.Error(), "is damaged") {
		t.Fatalf("open of a file cut from %d to %d bytes: %v", fi.Size(), fi.Size()/3, err)
	}
}

// TestSweepBatches: Sweep removes every expired record, over several
// write transactions, and keeps the live ones; a Check starts it in the
// background, not under the stage's lock.
func TestSweepBatches(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	path := filepath.Join(t.TempDir(), "greylist.db")
	s, err := OpenBolt(path, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const dead, live = 2*sweepBatch + 500, 700
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for i := range dead + live {
			exp := now.Add(-time.Minute)
			if i%4 == 0 && i/4 < live {
				exp = now.Add(time.Hour)
			}
			if err := b.Put(fmt.Appendf(nil, "t|%06d", i), encode(Record{First: now}, exp)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Sweep()
	if err != nil || n != dead {
		t.Fatalf("swept %d (%v), want %d", n, err, dead)
	}
	left := 0
	s.db.View(func(tx *bolt.Tx) error { left = tx.Bucket(bucket).Stats().KeyN; return nil })
	if left != live {
		t.Fatalf("%d records left, want the %d live ones", left, live)
	}

	st := NewWithStore(s, func() time.Time { return now })
	if err := st.Configure(context.Background(), sdk.Env{StageName: "g"}, nil); err != nil {
		t.Fatal(err)
	}
	s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte("t|old"), encode(Record{First: now}, now.Add(-time.Minute)))
	})
	if _, err := st.Check(context.Background(), rcpt("203.0.113.5", "a@b.example", "c@d.example")); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	done := st.swept
	st.mu.Unlock()
	if done == nil {
		t.Fatal("Check started no sweep")
	}
	<-done
	s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucket).Get([]byte("t|old")) != nil {
			t.Error("the background sweep left an expired record")
		}
		return nil
	})
}
