package sdk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// CheckBoltFile reports a bbolt file (a stage's state, as at
// Env.StatePath) that was cut short: a disk that filled, a copy stopped
// half-way. bbolt memory-maps the file and reads the pages its header
// names, so a truncated file made a stage fault or panic at open or at
// some later read, with nothing that named the file. Call it before
// bolt.Open. A missing or empty file is fine (bbolt creates it); a file
// too damaged to have a valid header is left to bbolt, which says
// "invalid database".
func CheckBoltFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	// bbolt's two meta pages: each starts with a 16-byte page header,
	// then magic, version, page size, flags (4 bytes each), the root
	// bucket (16), the freelist page (8), the high-water page id (8), the
	// transaction id (8) and an FNV-64a checksum of what precedes it.
	// bbolt reads whichever valid one has the higher transaction id.
	var best, pageSize uint64
	var bestTx uint64
	found := false
	for i := 0; i < 2; i++ {
		off := int64(0)
		if i == 1 {
			if pageSize == 0 {
				break
			}
			off = int64(pageSize)
		}
		var b [16 + 64]byte
		if _, err := f.ReadAt(b[:], off); err != nil {
			if errors.Is(err, io.EOF) {
				continue
			}
			return err
		}
		m := b[16:]
		if binary.LittleEndian.Uint32(m[0:]) != 0xED0CDAED || binary.LittleEndian.Uint32(m[4:]) != 2 {
			continue
		}
		h := fnv.New64a()
		h.Write(m[:56])
		if h.Sum64() != binary.LittleEndian.Uint64(m[56:]) {
			continue
		}
		ps := uint64(binary.LittleEndian.Uint32(m[8:]))
		if pageSize == 0 {
			pageSize = ps
		}
		if tx := binary.LittleEndian.Uint64(m[48:]); !found || tx > bestTx {
			best, bestTx, found = binary.LittleEndian.Uint64(m[40:])*ps, tx, true
		}
	}
	if found && uint64(fi.Size()) < best {
		return fmt.Errorf("%s is damaged: %d bytes, but its pages need %d (cut short, e.g. by a full disk or "+
			"an interrupted copy); restore it from a backup, or move it away to start afresh", path, fi.Size(), best)
	}
	return nil
}
