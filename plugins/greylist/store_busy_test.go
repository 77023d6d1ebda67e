package greylist

import (
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
