package execfilter

import (
	"archive/zip"
	"bytes"
	"compress/bzip2"
	"compress/flate"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
	fastxz "github.com/mikelolasagasti/xz"
	"github.com/ulikunitz/xz/lzma"
)

// ZIP readers disagree on which entries a ZIP holds. archive/zip (and so
// the archives package) trusts the central directory at the end; of two
// ZIPs concatenated into one attachment 7-Zip reads the first, and when
// the directory is damaged or missing 7-Zip and WinRAR extract from the
// local file headers. Malware goes where the filter does not read, so
// after the directory the stage walks the local headers from the start of
// the data and inspects every entry the directory did not cover, within
// the same budget (entries, bytes, ratio, time) as the directory's.

// APPNOTE 4.4.4 general purpose flags, and 4.4.5 methods: the WinZip AES
// one, and those 7-Zip and WinZip write that archive/zip does not decode.
const (
	zipFlagEncrypted  = 0x1   // bit 0
	zipFlagDescriptor = 0x8   // bit 3: sizes in a data descriptor after the data
	zipFlagUTF8       = 0x800 // bit 11
	zipMethodAES      = 99
	zipMethodBzip2    = 12
	zipMethodLZMA     = 14
	zipMethodZstd     = 93
	zipMethodXz       = 95
)

// extraMethods are the methods zipDecompressor adds to archive/zip's.
var extraMethods = []uint16{zipMethodBzip2, zipMethodLZMA, zipMethodZstd, zipMethodXz}

// zipDecompressor decodes an entry's data packed with method, or is nil
// for a method we cannot decode (PPMd, Deflate64, IBM's): such an entry is
// judged by its name alone. The decoders are registered per reader, not
// with zip.RegisterDecompressor, and each is bounded in memory the way
// 7z's are (maxDict): what they produce goes through copyFile and its
// limits like deflate's.
func zipDecompressor(method uint16, lim Limits) zip.Decompressor {
	dict := maxDict(lim)
	switch method {
	case zip.Store:
		return io.NopCloser
	case zip.Deflate:
		return flate.NewReader
	case zipMethodBzip2:
		return func(r io.Reader) io.ReadCloser { return io.NopCloser(bzip2.NewReader(r)) } // 900 kB blocks at most
	case zipMethodLZMA:
		return func(r io.Reader) io.ReadCloser { return zipLZMA(r, dict) }
	case zipMethodZstd:
		return func(r io.Reader) io.ReadCloser {
			// One decoder, no goroutines (a panic in one would not be
			// recovered), its window bounded as an LZMA dictionary.
			d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(uint64(dict)))
			if err != nil {
				return errReader{err}
			}
			return zstdReader{d}
		}
	case zipMethodXz:
		return func(r io.Reader) io.ReadCloser { return zipXz(r, dict) }
	}
	return nil
}

// zipLZMA reads LZMA as a ZIP stores it (APPNOTE 5.8.8): the LZMA SDK
// version (2 bytes), the properties' size (2, always 5) and the properties,
// then the stream without the size the classic .lzma header carries; it
// ends with an end marker (flag bit 1) or with its data. The header the
// lzma package reads is made with the size unknown.
func zipLZMA(r io.Reader, dict int64) io.ReadCloser {
	var h [9]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return errReader{err}
	}
	if binary.LittleEndian.Uint16(h[2:]) != 5 {
		return errReader{errors.New("zip: LZMA properties size")}
	}
	if int64(binary.LittleEndian.Uint32(h[5:])) > dict {
		return errReader{&errLimit{"dictionary"}} // the decoder would allocate all of it
	}
	classic := append(h[4:9:9], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	lr, err := lzma.ReaderConfig{DictCap: int(dict)}.NewReader(io.MultiReader(bytes.NewReader(classic), r))
	if err != nil {
		return errReader{err}
	}
	return io.NopCloser(lr)
}

// zipXz reads an XZ stream (The .xz File Format 1.2.1) with a decoder that
// refuses, block by block as it meets them, an LZMA2 dictionary past dict
// (github.com/mikelolasagasti/xz, the one mholt/archives reads .xz files
// with). ulikunitz/xz allocates whatever a block header declares, up to
// 4 GiB, and finds the blocks where the data before them ends, not where
// the index says: a check of the headers the index lists let a second,
// unlisted block through with a 4 GiB dictionary.
func zipXz(r io.Reader, dict int64) io.ReadCloser {
	xr, err := fastxz.NewReader(r, uint32(min(dict, math.MaxUint32)))
	if err != nil {
		return errReader{xzErr(err)} // it reads ahead: the first block's header may be refused here
	}
	return io.NopCloser(xzLimit{xr})
}

// xzLimit reports the decoder's refusal of a dictionary as the limit it is.
type xzLimit struct{ r io.Reader }

func (x xzLimit) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	return n, xzErr(err)
}

func xzErr(err error) error {
	if errors.Is(err, fastxz.ErrMemlimit) {
		return &errLimit{"dictionary"}
	}
	return err
}

// zstdReader reports a window past the bound as the limit it is.
type zstdReader struct{ d *zstd.Decoder }

func (z zstdReader) Read(p []byte) (int, error) {
	n, err := z.d.Read(p)
	if errors.Is(err, zstd.ErrWindowSizeExceeded) {
		err = &errLimit{"dictionary"}
	}
	return n, err
}

func (z zstdReader) Close() error { z.d.Close(); return nil }

// errReader is a decompressor that could not start: archive/zip's
// Decompressor has no error to return, so the first Read returns it.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
func (e errReader) Close() error             { return nil }

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
	aliases       []string // unicodePaths
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
	lh.aliases = unicodePaths(h[fixed+nameLen : fixed+nameLen+extraLen])
	// Sizes deferred to a data descriptor are zero here; ZIP64 ones are
	// 0xffffffff (in the extra field, which is not read: the descriptor
	// says them too).
	if lh.csize == 0 && lh.flags&zipFlagDescriptor != 0 || lh.csize == 0xffffffff {
		lh.csize = -1
	}
	return lh, true
}

// zipExtraUnicodePath is Info-ZIP's Unicode Path extra field (APPNOTE
// 4.6.9): version 1, the CRC-32 of the header's name, the name in UTF-8.
const zipExtraUnicodePath = 0x7075

// unicodePaths returns the names an entry's Unicode Path fields give it.
// 7-Zip, WinRAR, unzip and libarchive extract the entry under that name,
// most of them only while its CRC matches the header's name and some
// whatever it says; archive/zip ignores the field. So a ZIP can show us
// readme.txt and its user invoice.js: every such name is judged, the CRC
// unchecked.
func unicodePaths(extra []byte) []string {
	var names []string
	for len(extra) >= 4 {
		id, size := binary.LittleEndian.Uint16(extra), int(binary.LittleEndian.Uint16(extra[2:]))
		if 4+size > len(extra) {
			break
		}
		if field := extra[4 : 4+size]; id == zipExtraUnicodePath && size > 5 && field[0] == 1 {
			names = append(names, zipName(string(field[5:]), false))
		}
		extra = extra[4+size:]
	}
	return names
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// zipDir reports a directory entry: one whose every name ends in '/'. A
// Unicode Path field that names a directory entry "invoice.js" makes it a
// file to unzip and bsdtar, which extract its bytes under that name.
func zipDir(name string, aliases []string) bool {
	if !strings.HasSuffix(name, "/") {
		return false
	}
	for _, a := range aliases {
		if !strings.HasSuffix(a, "/") {
			return false
		}
	}
	return true
}

// zipSpan is the data of an entry the central directory covers, and the
// names the directory gives it.
type zipSpan struct {
	end   int64
	names []string
}

// localEntries walks the local headers from the start of data and
// inspects the entries whose data the central directory did not cover
// (covered maps a covered entry's data start to its span). The data of an
// entry, covered or not, is skipped, so a ZIP stored inside is not opened.
// A covered entry's local header may name it otherwise than the directory
// does (readme.txt there, invoice.js here): the extractors that walk the
// local headers use that name, which is judged by itself.
func (in *inspector) localEntries(b *budget, data []byte, covered map[int64]zipSpan) {
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
		if span, ok := covered[int64(lh.start)]; ok {
			for _, n := range append([]string{lh.name}, lh.aliases...) {
				if !slices.Contains(span.names, n) && !strings.HasSuffix(n, "/") {
					in.judge(n, "", newFileScan(nil), TagInArchive)
				}
			}
			// Where the two sizes differ the smaller is kept, so a header
			// cannot hide behind a directory record that claims more.
			end := span.end
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
// known (from the header or a data descriptor) and its method one
// zipDecompressor decodes; otherwise its name alone is judged, and the
// search goes on from its data, as a header may follow anywhere.
func (in *inspector) localEntry(b *budget, data []byte, lh localHeader) (int, error) {
	end := lh.start
	if lh.csize >= 0 {
		end = int(min(int64(lh.start)+lh.csize, int64(len(data)))) // a cut entry: what is there
	}
	if zipDir(lh.name, lh.aliases) {
		return end, nil
	}
	body := data[lh.start:end]
	e := entry{name: lh.name, csize: max(lh.csize, 0), aliases: lh.aliases,
		encrypted: lh.flags&zipFlagEncrypted != 0 || lh.method == zipMethodAES}
	e.open = func() (io.ReadCloser, error) {
		if dec := zipDecompressor(lh.method, in.lim); lh.csize >= 0 && dec != nil {
			return dec(bytes.NewReader(body)), nil
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
