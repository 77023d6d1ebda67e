package execfilter

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"io"
	"strings"
)

// ZIP readers disagree on which entries a ZIP holds. archive/zip (and so
// the archives package) trusts the central directory at the end; of two
// ZIPs concatenated into one attachment 7-Zip reads the first, and when
// the directory is damaged or missing 7-Zip and WinRAR extract from the
// local file headers. Malware goes where the filter does not read, so
// after the directory the stage walks the local headers from the start of
// the data and inspects every entry the directory did not cover, within
// the same budget (entries, bytes, ratio, time) as the directory's.

// APPNOTE 4.4.4 general purpose flags, and the WinZip AES method.
const (
	zipFlagEncrypted  = 0x1   // bit 0
	zipFlagDescriptor = 0x8   // bit 3: sizes in a data descriptor after the data
	zipFlagUTF8       = 0x800 // bit 11
	zipMethodAES      = 99
)

var (
	localHeaderSig = []byte("PK\x03\x04") // APPNOTE 4.3.7
	descriptorSig  = []byte("PK\x07\x08") // APPNOTE 4.3.9.3
)

// maxDescriptors caps the data descriptors indexed per archive: a file
// stuffed with their signature costs a bounded map, not its size in memory.
const maxDescriptors = 1 << 16

// localHeader is one local file header (APPNOTE 4.3.7).
type localHeader struct {
	name          string
	flags, method uint16
	start         int   // where the data begins
	csize         int64 // compressed size; -1 when the header does not say
}

// parseLocalHeader reads the header at off; false when it does not fit in
// data or has no name (a chance "PK\x03\x04" in other bytes).
func parseLocalHeader(data []byte, off int) (localHeader, bool) {
	const fixed = 30
	if len(data)-off < fixed {
		return localHeader{}, false
	}
	h := data[off:]
	nameLen, extraLen := int(binary.LittleEndian.Uint16(h[26:])), int(binary.LittleEndian.Uint16(h[28:]))
	if nameLen == 0 || fixed+nameLen+extraLen > len(h) {
		return localHeader{}, false
	}
	lh := localHeader{flags: binary.LittleEndian.Uint16(h[6:]), method: binary.LittleEndian.Uint16(h[8:]),
		start: off + fixed + nameLen + extraLen, csize: int64(binary.LittleEndian.Uint32(h[18:]))}
	raw := string(h[fixed : fixed+nameLen])
	lh.name = zipName(raw, lh.flags&zipFlagUTF8 == 0 && !isASCII(raw))
	// Sizes deferred to a data descriptor are zero here; ZIP64 ones are
	// 0xffffffff (in the extra field, which is not read: the descriptor
	// says them too).
	if lh.csize == 0 && lh.flags&zipFlagDescriptor != 0 || lh.csize == 0xffffffff {
		lh.csize = -1
	}
	return lh, true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// localEntries walks the local headers from the start of data and
// inspects the entries whose data the central directory did not cover
// (covered maps a covered entry's data start to its end). The data of an
// entry, covered or not, is skipped, so a ZIP stored inside is not opened.
func (in *inspector) localEntries(b *budget, data []byte, covered map[int64]int64) {
	var descs map[int]int
	for off := 0; off < len(data); {
		if b.ctx.Err() != nil {
			in.limit("time")
			return
		}
		i := bytes.Index(data[off:], localHeaderSig)
		if i < 0 {
			return
		}
		off += i
		lh, ok := parseLocalHeader(data, off)
		if !ok {
			off += len(localHeaderSig)
			continue
		}
		if end, ok := covered[int64(lh.start)]; ok {
			// Where the two sizes differ the smaller is kept, so a header
			// cannot hide behind a directory record that claims more.
			if lh.csize >= 0 {
				end = min(end, int64(lh.start)+lh.csize)
			}
			off = int(min(max(end, int64(lh.start)), int64(len(data))))
			continue
		}
		if lh.csize < 0 {
			if descs == nil {
				descs = descriptors(data)
			}
			if n, ok := descs[lh.start]; ok {
				lh.csize = int64(n)
			}
		}
		next, err := in.localEntry(b, data, lh)
		if err != nil {
			in.extractError(err)
			return
		}
		off = next
	}
}

// localEntry inspects one entry found by its local header and returns
// where to search for the next header. Its bytes are read when its size is
// known (from the header or a data descriptor) and it is stored or
// deflated; otherwise its name alone is judged, and the search goes on
// from its data, as a header may follow anywhere.
func (in *inspector) localEntry(b *budget, data []byte, lh localHeader) (int, error) {
	end := lh.start
	if lh.csize >= 0 {
		end = int(min(int64(lh.start)+lh.csize, int64(len(data)))) // a cut entry: what is there
	}
	if strings.HasSuffix(lh.name, "/") {
		return end, nil
	}
	body := data[lh.start:end]
	e := entry{name: lh.name, csize: max(lh.csize, 0),
		encrypted: lh.flags&zipFlagEncrypted != 0 || lh.method == zipMethodAES}
	e.open = func() (io.ReadCloser, error) {
		switch {
		case lh.csize >= 0 && lh.method == zip.Store:
			return io.NopCloser(bytes.NewReader(body)), nil
		case lh.csize >= 0 && lh.method == zip.Deflate:
			return flate.NewReader(bytes.NewReader(body)), nil
		}
		return io.NopCloser(bytes.NewReader(nil)), nil // the name alone
	}
	return end, in.entry(b, e)
}

// descriptors indexes the data descriptors in data by the data start their
// compressed size points back to (32-bit and ZIP64 forms), as 7-Zip and
// libarchive find the end of an entry whose header does not give its size.
func descriptors(data []byte) map[int]int {
	idx := map[int]int{}
	for off := 0; len(idx) < maxDescriptors; off += len(descriptorSig) {
		i := bytes.Index(data[off:], descriptorSig)
		if i < 0 {
			break
		}
		off += i
		// The nearest descriptor after a start is its own: the first found wins.
		if off+16 <= len(data) {
			if n := int64(binary.LittleEndian.Uint32(data[off+8:])); n <= int64(off) {
				addFirst(idx, off-int(n), int(n))
			}
		}
		if off+24 <= len(data) {
			if n := binary.LittleEndian.Uint64(data[off+8:]); n <= uint64(off) {
				addFirst(idx, off-int(n), int(n))
			}
		}
	}
	return idx
}

func addFirst(m map[int]int, k, v int) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}
