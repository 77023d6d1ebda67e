package sdk

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestCheckBoltFile: a bbolt file cut short is reported, naming the file,
// before bbolt maps it (bbolt then faulted reading the missing pages); a
// whole file, a missing or empty one, and one that is no bbolt file at all
// (bbolt's own "invalid database" says that) pass.
func TestCheckBoltFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			for j := range 1000 {
				if err := b.Put(fmt.Appendf(nil, "k%d-%d", i, j), make([]byte, 100)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := CheckBoltFile(path); err != nil {
		t.Fatalf("whole file: %v", err)
	}
	fi, _ := os.Stat(path)
	if err := os.Truncate(path, fi.Size()/3); err != nil {
		t.Fatal(err)
	}
	if err := CheckBoltFile(path); err == nil || !strings.Contains(err.Error(), path+" is damaged") {
		t.Fatalf("file cut from %d to %d bytes: %v", fi.Size(), fi.Size()/3, err)
	}
	empty := filepath.Join(dir, "empty.db")
	garbage := filepath.Join(dir, "garbage.db")
	os.WriteFile(empty, nil, 0o600)
	os.WriteFile(garbage, []byte(strings.Repeat("not a bbolt file\n", 1000)), 0o600)
	for _, p := range []string{filepath.Join(dir, "missing.db"), empty, garbage} {
		if err := CheckBoltFile(p); err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
		}
	}
}
