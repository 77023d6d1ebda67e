package execfilter

import (
	"bytes"
	"compress/bzip2"
	"compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/bits"

	"github.com/ulikunitz/xz/lzma"
)

// check7z reads a 7z's header before github.com/bodgit/sevenzip does, and
// refuses what that reader would allocate without bound. The reader makes
// its slices from the counts a header declares before it reads what they
// count (make([]FileHeader, numFiles) in types.go, in 1.6.1 and still in
// 1.6.5, which only caps counts at 2^32): a 45-byte archive declaring 2^40
// files ends the plugin process with "fatal error: out of memory", which no
// recover catches. So every count must fit the header bytes that would carry
// what it counts, and stay within what the limits let us inspect; the
// header's CRC is checked first, as the reader checks it only after parsing.
//
// The error is an *errLimit when the archive is bigger than the limits, one
// whose text says encrypted for a header we cannot read without the
// password, and any other for a header that does not parse (archive.corrupt).
// What does not allocate (indexes that disagree, files without streams) is
// left to the reader, whose panics inspectArchive recovers.
//
// The format is 7zFormat.txt of the LZMA SDK; the bounds on coders are
// 7-Zip's own (7zIn.cpp, k_Scan_NumCoders_MAX and NumStreams).
func check7z(data []byte, lim Limits) error {
	// Signature header: signature (6), version (2), start header CRC (4),
	// then the start header: next header offset (8), size (8), CRC (4).
	if len(data) < 32 || crc32.ChecksumIEEE(data[12:32]) != binary.LittleEndian.Uint32(data[8:]) {
		return err7z("start header checksum")
	}
	off, size := binary.LittleEndian.Uint64(data[12:]), binary.LittleEndian.Uint64(data[20:])
	rest := uint64(len(data) - 32)
	if off > rest || size > rest-off {
		return err7z("header past the end of the archive")
	}
	raw := data[32+off : 32+off+size]
	if crc32.ChecksumIEEE(raw) != binary.LittleEndian.Uint32(data[28:]) {
		return err7z("header checksum")
	}
	h := &hdr7z{b: raw, max: capCount(lim.MaxEntries)}
	switch h.byte() {
	case id7zHeader:
		return h.header(lim)
	case id7zEncodedHeader:
		// The header is itself packed: its streams info says how.
		s := h.streams()
		if h.err != nil {
			return h.err
		}
		if err := checkDicts(s.folders, lim); err != nil {
			return err
		}
		plain, err := unpack7zHeader(data, s)
		if err != nil {
			return err
		}
		h = &hdr7z{b: plain, max: h.max}
		if h.byte() != id7zHeader {
			return err7z("packed header is not a header")
		}
		return h.header(lim)
	}
	return err7z("no header")
}

// 7zFormat.txt property IDs.
const (
	id7zEnd              = 0x00
	id7zHeader           = 0x01
	id7zMainStreamsInfo  = 0x04
	id7zFilesInfo        = 0x05
	id7zPackInfo         = 0x06
	id7zUnpackInfo       = 0x07
	id7zSubStreamsInfo   = 0x08
	id7zSize             = 0x09
	id7zCRC              = 0x0a
	id7zFolder           = 0x0b
	id7zCodersUnpackSize = 0x0c
	id7zNumUnpackStream  = 0x0d
	id7zEncodedHeader    = 0x17
)

// 7z method IDs of the coders a packed header may use.
const (
	method7zCopy  = "\x00"
	method7zLZMA  = "\x03\x01\x01"
	method7zLZMA2 = "\x21"
	method7zFlate = "\x04\x01\x08"
	method7zBzip2 = "\x04\x02\x02"
	method7zAES   = "\x06\xf1\x07\x01"
	method7zPPMd  = "\x03\x04\x01"
)

const (
	max7zCoders = 64       // coders in a folder, and streams into them (7-Zip)
	max7zHeader = 16 << 20 // a packed header unpacked: 7-Zip writes ~100 bytes a file
)

// err7z is a 7z header that does not parse.
type err7z string

func (e err7z) Error() string { return "7z: " + string(e) }

var errEncrypted7z = errors.New("7z: encrypted header")

// capCount bounds every count a header declares (files, folders, packed
// streams, substreams): a folder has at most four packed streams in what
// 7-Zip writes (BCJ2), and a directory is a file entry max_entries does
// not count, so four times max_entries leaves real archives to the walk,
// which stops at max_entries itself.
func capCount(maxEntries int) uint64 {
	if uint64(maxEntries) > 1<<40 {
		return 1 << 42
	}
	return 4 * uint64(maxEntries)
}

// folder7z is one folder of a streams info: the coders that unpack it.
type folder7z struct {
	coders []coder7z
	size   uint64 // its unpacked size, as declared
}

type coder7z struct {
	id, props []byte
}

type streams7z struct {
	packPos   uint64
	packSizes []uint64
	folders   []folder7z
}

// hdr7z reads a 7z header. The first error sticks: reads after it return
// zeros, so the walk needs no check after each read.
type hdr7z struct {
	b   []byte
	max uint64 // capCount
	err error
}

func (h *hdr7z) fail(err error) {
	if h.err == nil {
		h.err = err
	}
	h.b = nil
}

func (h *hdr7z) byte() byte {
	if len(h.b) == 0 {
		h.fail(err7z("header cut short"))
		return 0
	}
	c := h.b[0]
	h.b = h.b[1:]
	return c
}

func (h *hdr7z) bytes(n uint64) []byte {
	if n > uint64(len(h.b)) {
		h.fail(err7z("header cut short"))
		return nil
	}
	p := h.b[:n]
	h.b = h.b[n:]
	return p
}

// number reads a 7z NUMBER: the leading one bits of the first byte count
// the little-endian bytes that follow; its other bits are the value's top
// (read as bodgit/sevenzip reads it, so that both walks stay in step).
func (h *hdr7z) number() uint64 {
	first := h.byte()
	n := bits.LeadingZeros8(^first)
	var v uint64
	if n < 7 {
		v = uint64(first&(1<<(8-n)-1)) << (8 * n)
	}
	for i := range n {
		v |= uint64(h.byte()) << (8 * i)
	}
	return v
}

// count reads the number of things that follow: each takes at least a
// byte of the header, and there may not be more than the limits allow.
func (h *hdr7z) count() uint64 {
	n := h.number()
	switch {
	case n > uint64(len(h.b)):
		h.fail(err7z("a count larger than the header"))
	case n > h.max:
		h.fail(&errLimit{"entries"})
	}
	return n
}

// digests skips n CRCs: an all-defined byte, else a bit for each, then
// four bytes for each defined one.
func (h *hdr7z) digests(n uint64) {
	defined := n
	if h.byte() == 0 {
		defined = 0
		vec := h.bytes((n + 7) / 8)
		for i := range n {
			if i/8 < uint64(len(vec)) && vec[i/8]&(0x80>>(i%8)) != 0 {
				defined++
			}
		}
	}
	h.bytes(4 * defined)
}

// header walks a (plain) Header after its ID.
func (h *hdr7z) header(lim Limits) error {
	var s *streams7z
	id := h.byte()
	if id == id7zMainStreamsInfo {
		s = h.streams()
		id = h.byte()
	}
	if id == id7zFilesInfo {
		h.filesInfo()
		id = h.byte()
	}
	if id != id7zEnd {
		h.fail(err7z("unexpected property in the header"))
	}
	if h.err != nil || s == nil {
		return h.err
	}
	return checkDicts(s.folders, lim)
}

// streams walks a StreamsInfo.
func (h *hdr7z) streams() *streams7z {
	s := &streams7z{}
	id := h.byte()
	if id == id7zPackInfo {
		s.packPos = h.number()
		n := h.count()
		if id = h.byte(); id == id7zSize {
			for range n {
				s.packSizes = append(s.packSizes, h.number())
			}
			id = h.byte()
		}
		if id == id7zCRC {
			h.digests(n)
			id = h.byte()
		}
		if id != id7zEnd {
			h.fail(err7z("unexpected property in the pack info"))
		}
		id = h.byte()
	}
	if id == id7zUnpackInfo {
		s.folders = h.unpackInfo()
		id = h.byte()
	}
	if id == id7zSubStreamsInfo {
		h.subStreams(len(s.folders))
		id = h.byte()
	}
	if id != id7zEnd {
		h.fail(err7z("unexpected property in the streams info"))
	}
	if h.err != nil {
		return nil
	}
	return s
}

func (h *hdr7z) unpackInfo() []folder7z {
	if h.byte() != id7zFolder {
		h.fail(err7z("unpack info without folders"))
	}
	n := h.count()
	if h.byte() != 0 {
		h.fail(err7z("external folders")) // the reader has no support for them either
	}
	var folders []folder7z
	for i := uint64(0); i < n && h.err == nil; i++ {
		folders = append(folders, h.folder())
	}
	if h.byte() != id7zCodersUnpackSize {
		h.fail(err7z("folders without sizes"))
	}
	for i := range folders {
		// One size for each coder's output; the folder's is the last
		// one no bind pair takes, which for the one-coder folders a
		// packed header is unpacked from is the only one.
		for range folders[i].coders {
			folders[i].size = h.number()
		}
	}
	id := h.byte()
	if id == id7zCRC {
		h.digests(n)
		id = h.byte()
	}
	if id != id7zEnd {
		h.fail(err7z("unexpected property in the unpack info"))
	}
	return folders
}

// folder walks a Folder: its coders, the bind pairs between them and the
// packed streams they read. The reader sizes its slices from the sums of
// the coders' streams, so these are kept within 7-Zip's own bounds.
func (h *hdr7z) folder() folder7z {
	var f folder7z
	n := h.number()
	if n == 0 || n > max7zCoders {
		h.fail(err7z("number of coders"))
		return f
	}
	var in uint64
	for range n {
		flags := h.byte()
		c := coder7z{id: h.bytes(uint64(flags & 0x0f))}
		ins, outs := uint64(1), uint64(1)
		if flags&0x10 != 0 {
			ins, outs = h.number(), h.number()
		}
		if flags&0x20 != 0 {
			c.props = h.bytes(h.number())
		}
		if ins == 0 || ins > max7zCoders || outs != 1 {
			h.fail(err7z("coder streams"))
		}
		in += ins
		f.coders = append(f.coders, c)
	}
	if in > max7zCoders {
		h.fail(err7z("coder streams"))
	}
	if h.err != nil {
		return f
	}
	for range n - 1 { // bind pairs: an input and the output it takes
		h.number()
		h.number()
	}
	if packed := in - (n - 1); packed > 1 {
		for range packed {
			h.number()
		}
	}
	return f
}

// subStreams walks a SubStreamsInfo: how many files each folder holds,
// their sizes and CRCs.
func (h *hdr7z) subStreams(folders int) {
	id := h.byte()
	per := make([]uint64, folders)
	total := uint64(folders)
	if id == id7zNumUnpackStream {
		total = 0
		for i := range per {
			per[i] = h.count()
			if total += per[i]; total > h.max {
				h.fail(&errLimit{"entries"})
			}
		}
		id = h.byte()
	} else {
		for i := range per {
			per[i] = 1
		}
	}
	if id == id7zSize {
		for _, n := range per {
			for j := uint64(1); j < n && h.err == nil; j++ {
				h.number()
			}
		}
		id = h.byte()
	}
	if id == id7zCRC {
		h.digests(total) // the reader reads one for every stream
		id = h.byte()
	}
	if id != id7zEnd {
		h.fail(err7z("unexpected property in the substreams info"))
	}
}

// filesInfo walks a FilesInfo: the reader allocates for each of its
// properties by the number of files, so that number is what is bounded;
// each property says its own size.
func (h *hdr7z) filesInfo() {
	h.count()
	for h.err == nil {
		if h.byte() == id7zEnd {
			return
		}
		h.bytes(h.number())
	}
}

// checkDicts refuses LZMA and LZMA2 dictionaries and PPMd model memory
// past maxDict: the decoder allocates all of it when an entry is opened
// (up to 3 GiB for LZMA2 and 4 GiB for PPMd, whatever the data).
func checkDicts(folders []folder7z, lim Limits) error {
	for _, f := range folders {
		for _, c := range f.coders {
			if d, ok := dictSize(c); ok && d > uint64(maxDict(lim)) {
				return &errLimit{"dictionary"}
			}
		}
	}
	return nil
}

// dictSize is an LZMA or LZMA2 coder's dictionary size, or a PPMd coder's
// model memory, from its properties (LZMA: a byte, then the size; LZMA2:
// one byte, Lzma2Dec.c; PPMd: the order byte, then the size, Ppmd7Dec.c).
// bodgit/sevenzip decodes PPMd since 1.6.3 and allocates the model's
// memory in one slice when the entry is opened.
func dictSize(c coder7z) (uint64, bool) {
	switch string(c.id) {
	case method7zLZMA, method7zPPMd:
		if len(c.props) >= 5 {
			return uint64(binary.LittleEndian.Uint32(c.props[1:])), true
		}
	case method7zLZMA2:
		if len(c.props) >= 1 {
			p := c.props[0]
			if p >= 40 {
				return 1<<32 - 1, true
			}
			return uint64(2|p&1) << (p/2 + 11), true
		}
	}
	return 0, false
}

// unpack7zHeader unpacks an encoded header, which 7-Zip packs with LZMA
// (and AES first when the names are encrypted too). Other tools may use
// the other common coders; a chain of coders no writer uses for a header
// is not unpacked, and the archive is reported corrupt.
func unpack7zHeader(data []byte, s *streams7z) ([]byte, error) {
	if len(s.folders) != 1 || len(s.packSizes) == 0 {
		return nil, err7z("packed header without one folder")
	}
	f := s.folders[0]
	for _, c := range f.coders {
		if string(c.id) == method7zAES {
			return nil, errEncrypted7z
		}
	}
	if f.size > max7zHeader {
		return nil, &errLimit{"7z header"}
	}
	rest := uint64(len(data) - 32)
	if s.packPos > rest || s.packSizes[0] > rest-s.packPos || len(f.coders) != 1 {
		return nil, err7z("packed header stream")
	}
	packed := bytes.NewReader(data[32+s.packPos : 32+s.packPos+s.packSizes[0]])
	var r io.Reader
	var err error
	switch c := f.coders[0]; string(c.id) {
	case method7zCopy:
		r = packed
	case method7zLZMA:
		if len(c.props) < 5 {
			return nil, err7z("LZMA properties")
		}
		// The .lzma header ulikunitz/xz reads: the coder's properties and
		// the unpacked size, as bodgit/sevenzip's LZMA reader builds it.
		hdr := binary.LittleEndian.AppendUint64(bytes.Clone(c.props[:5]), f.size)
		r, err = lzma.NewReader(io.MultiReader(bytes.NewReader(hdr), packed))
	case method7zLZMA2:
		d, _ := dictSize(c)
		r, err = lzma.Reader2Config{DictCap: int(max(min(d, max7zHeader), lzma.MinDictCap))}.NewReader2(packed)
	case method7zFlate:
		r = flate.NewReader(packed)
	case method7zBzip2:
		r = bzip2.NewReader(packed)
	default:
		return nil, err7z("packed header coder")
	}
	if err != nil {
		return nil, err7z("packed header: " + err.Error())
	}
	plain, err := io.ReadAll(io.LimitReader(r, int64(f.size)))
	if err != nil {
		return nil, err7z("packed header: " + err.Error())
	}
	return plain, nil
}
