package execfilter

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// signature is a hex pattern of the original server's binary signature
// list, anywhere in a file or at a fixed offset.
type signature struct {
	name   string
	bytes  []byte
	offset int64 // -1: anywhere
}

// parseSignature decodes "4D 5A 90 00" (spaces allowed); offset -1 is
// anywhere. Its errors start with the key, hex or offset.
func parseSignature(name, hexs string, offset int64) (signature, error) {
	b, err := hex.DecodeString(strings.Join(strings.Fields(hexs), ""))
	if err != nil || len(b) == 0 {
		return signature{}, fmt.Errorf("hex: %q is not hex", hexs)
	}
	return signature{name: name, bytes: b, offset: offset}, nil
}

// fileScan streams one file: it keeps the head for kindOf and matches the
// signatures across chunk boundaries, without holding the whole file.
type fileScan struct {
	sigs    []signature
	maxSig  int
	head    []byte
	tail    []byte // the last tailSize bytes: where a nested ZIP keeps its directory
	carry   []byte // last maxSig-1 bytes, for matches across chunks
	pos     int64  // bytes seen
	matched map[string]bool
}

func newFileScan(sigs []signature) *fileScan {
	f := &fileScan{sigs: sigs, matched: map[string]bool{}}
	for _, s := range sigs {
		f.maxSig = max(f.maxSig, len(s.bytes))
	}
	return f
}

// Write feeds the next chunk.
func (f *fileScan) Write(p []byte) (int, error) {
	if room := headSize - len(f.head); room > 0 {
		f.head = append(f.head, p[:min(room, len(p))]...)
	}
	switch {
	case !bytes.HasPrefix(f.head, []byte("PK\x03\x04")):
		// only a nested ZIP needs its tail (nestedZipBomb)
	case len(p) >= tailSize:
		f.tail = append(f.tail[:0], p[len(p)-tailSize:]...)
	default:
		if drop := len(f.tail) + len(p) - tailSize; drop > 0 {
			f.tail = append(f.tail[:0], f.tail[drop:]...)
		}
		f.tail = append(f.tail, p...)
	}
	if len(f.sigs) > 0 {
		window := append(f.carry, p...)
		base := f.pos - int64(len(f.carry))
		for _, s := range f.sigs {
			if f.matched[s.name] {
				continue
			}
			if s.offset >= 0 {
				if rel := s.offset - base; rel >= 0 && rel+int64(len(s.bytes)) <= int64(len(window)) &&
					bytes.Equal(window[rel:rel+int64(len(s.bytes))], s.bytes) {
					f.matched[s.name] = true
				}
			} else if bytes.Contains(window, s.bytes) {
				f.matched[s.name] = true
			}
		}
		keep := min(f.maxSig-1, len(window))
		f.carry = append(f.carry[:0], window[len(window)-keep:]...)
	}
	f.pos += int64(len(p))
	return len(p), nil
}

// tailSize covers a ZIP's end record with the largest comment and a
// directory of a few hundred entries.
const tailSize = 128 << 10

// errLimit is a bomb stopped at a limit.
type errLimit struct{ what string }

func (e *errLimit) Error() string { return "archive limit: " + e.what }

// budget is what is left of an archive's limits while it is read.
type budget struct {
	ctx        context.Context
	lim        Limits
	entries    int
	total      int64
	compressed int64 // the archive's size, for the whole-archive ratio
}

// copyFile streams r into scan, stopping at the per-entry, total, ratio
// and time limits. csize is the entry's compressed size when known (0 if
// not); it is only used for the ratio, never trusted as a bound.
func (b *budget) copyFile(scan io.Writer, r io.Reader, csize int64) error {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		if err := b.ctx.Err(); err != nil {
			return &errLimit{"time"}
		}
		k, err := r.Read(buf)
		if k > 0 {
			n += int64(k)
			b.total += int64(k)
			scan.Write(buf[:k])
			if lerr := b.check(n, csize); lerr != nil {
				return lerr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (b *budget) check(n, csize int64) error {
	switch {
	case n > b.lim.MaxEntryBytes:
		return &errLimit{"entry bytes"}
	case b.total > b.lim.MaxTotalBytes:
		return &errLimit{"total bytes"}
	case n > ratioFloor && csize > 0 && n/csize > b.lim.MaxRatio:
		return &errLimit{"compression ratio"}
	case b.total > ratioFloor && b.compressed > 0 && b.total/b.compressed > b.lim.MaxRatio:
		return &errLimit{"compression ratio"}
	}
	return nil
}

// ratioFloor: below 1 MiB a high ratio is ordinary (a text file of spaces).
const ratioFloor = 1 << 20
