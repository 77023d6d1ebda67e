package greylist

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
