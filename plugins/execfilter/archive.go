package execfilter

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"path"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/bodgit/sevenzip"
	"github.com/mholt/archives"
	"github.com/nwaples/rardecode/v2"

	"github.com/portcullis-mta/portcullis/sdk/mime"
)

// entry is one file inside an archive, format-neutral.
type entry struct {
	name      string
	open      func() (io.ReadCloser, error)
	csize     int64 // compressed size when the format says (ratio only)
	encrypted bool
	quiet     bool     // a read error is not reported as archive.corrupt
	aliases   []string // its other names (a ZIP's Unicode Path field), judged too
}

// inspectArchive opens data one level deep if it is an archive; it reports
// whether it was one. Entries that are archives themselves are never opened.
func (in *inspector) inspectArchive(ctx context.Context, data []byte) (archive bool) {
	defer func() {
		// The archive readers index their slices with what the archive
		// declares, and panic when it lies (bodgit/sevenzip 1.6.1: a nil
		// pointer for a 7z listing a file but no streams to read it
		// from). An archive its reader cannot read is corrupt, and the
		// message's other parts are still judged; the stage does not fail.
		// (None of the readers starts a goroutine, whose panic this could
		// not catch; what they would allocate without bound, which no
		// recover saves, check7z refuses beforehand.)
		if r := recover(); r != nil {
			in.tag(TagCorrupt)
			archive = true
		}
	}()
	b := &budget{ctx: ctx, lim: in.lim, compressed: int64(len(data))}
	// TNEF first: a winmail.dat whose last file is a ZIP ends like a ZIP
	// with junk in front, and would hide the files before it.
	if isTNEF(data) && in.tnefAttachments(ctx, data) {
		return true
	}
	if zipAtStart(data) {
		in.zipEntries(b, data)
		return true
	}
	format, _, err := archives.Identify(ctx, "", bytes.NewReader(data))
	if zipEndRecord(data) {
		// A ZIP with junk in front (a self-extractor, or a trick to hide
		// it) is a ZIP to unzip tools. But a tar (or another archive)
		// whose last member is a stored ZIP ends with that ZIP's end
		// record too: read only as a ZIP, the tar's own members went
		// unseen. unzip opens the inner ZIP, a tar reader the tar: both
		// readings are walked, within one budget.
		in.zipEntries(b, data)
		if err != nil || format == nil {
			return true
		}
		if _, ok := format.(archives.Zip); ok {
			return true
		}
	}
	if err != nil || format == nil {
		if zipAfterJunk(data) {
			in.localEntries(b, data, nil)
			return true
		}
		return false
	}
	if ca, ok := format.(archives.CompressedArchive); ok && ca.Compression != nil {
		if n := gzipName(data); n != "" {
			// 7-Zip shows a .tgz as one file of that name, and
			// extracts it so (its bytes are the tar's).
			in.judge(n, "", newFileScan(nil), TagInArchive)
		}
		switch ca.Extraction.(type) {
		case archives.Zip, archives.SevenZip:
			// A ZIP or 7z compressed whole (a.zip.gz): these are read from
			// their directory at the end, not as a stream, so the archives
			// package cannot extract them through the decompressor (it
			// failed, and this was tagged corrupt). As any compressed single
			// file, an archive of one entry: the archive inside, tagged
			// nested and its directory read for a bomb, as in a ZIP.
			format = ca.Compression
		}
	}
	if isRar(format) {
		in.rarEntries(b, format, data)
		return true
	}
	if _, ok := format.(archives.SevenZip); ok {
		if err := check7z(data, in.lim); err != nil {
			in.extractError(err)
			return true
		}
	}
	switch f := format.(type) {
	case archives.Extractor:
		err = f.Extract(ctx, bytes.NewReader(data), func(ctx context.Context, fi archives.FileInfo) error {
			if fi.IsDir() {
				return nil
			}
			open := func() (io.ReadCloser, error) { return fi.Open() }
			if fi.LinkTarget != "" {
				// A link has no bytes of its own: a hard link's are its
				// target's, judged under the target's name; a symbolic
				// link's are wherever it points. Extracted, it is a file
				// under its own name (invoice.js linked to notes.txt), so
				// that name is judged alone.
				open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(nil)), nil }
			}
			return in.entry(b, entry{name: fi.NameInArchive, open: open})
		})
		in.extractError(err)
	case archives.Zlib, archives.Brotli:
		return false // a two-byte or no magic at all: too weak to call a file compressed
	case archives.Decompressor:
		// A compressed single file (report.exe.gz): its one entry is the
		// decompressed stream, named without the compression extension.
		// A stream that does not decompress is not reported as corrupt:
		// the magic may have been chance.
		open := func() (io.ReadCloser, error) { return f.OpenReader(bytes.NewReader(data)) }
		name := strings.TrimSuffix(in.current, path.Ext(in.current))
		var aliases []string
		if n := gzipName(data); n != "" {
			aliases = []string{n}
		}
		var lim *errLimit
		if err := in.entry(b, entry{name: name, open: open, quiet: true, aliases: aliases}); errors.As(err, &lim) {
			in.limit(lim.what)
		}
	default:
		return false
	}
	return true
}

// gzipName is the file name a gzip header stores (RFC 1952 2.3.1, FNAME),
// "" when it has none or data is no gzip. gunzip -N, 7-Zip and WinRAR
// restore the file under it, not under the attachment's name: invoice.gz
// holding invoice.js is extracted as invoice.js.
func gzipName(data []byte) string {
	if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		return ""
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return ""
	}
	return zr.Name
}

// extractError classifies what stopped a walk.
func (in *inspector) extractError(err error) {
	var lim *errLimit
	switch {
	case err == nil:
	case errors.As(err, &lim):
		in.limit(lim.what)
	case isEncrypted(err):
		in.tag(TagEncrypted)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		in.limit("time")
	default:
		in.tag(TagCorrupt)
	}
}

// isEncrypted recognises the "needs a password" errors of the 7-Zip and
// RAR readers, which cannot tell us otherwise.
func isEncrypted(err error) bool {
	var sz *sevenzip.ReadError
	if errors.As(err, &sz) && sz.Encrypted {
		return true
	}
	if errors.Is(err, rardecode.ErrArchiveEncrypted) || errors.Is(err, rardecode.ErrArchivedFileEncrypted) ||
		errors.Is(err, rardecode.ErrBadPassword) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "password") || strings.Contains(msg, "encrypted")
}

// zipAtStart finds a local header at the start (also after the marker
// that opens the first part of a split or spanned archive, APPNOTE 8.5.3
// and 8.5.4: an x.z01 7-Zip lists the entries of).
func zipAtStart(data []byte) bool {
	for _, p := range []string{"PK\x03\x04", "PK\x07\x08PK\x03\x04", "PK00PK\x03\x04"} {
		if bytes.HasPrefix(data, []byte(p)) {
			return true
		}
	}
	return false
}

// zipEndRecord finds an end-of-central-directory record where unzip tools
// look for one: within a maximal comment of the end (APPNOTE 4.3.16).
func zipEndRecord(data []byte) bool {
	tail := data[max(0, len(data)-(65535+22)):]
	return bytes.Contains(tail, []byte("PK\x05\x06"))
}

// zipAfterJunk finds a local header that parses in the first 64 KiB of
// data no other format claims: a ZIP with junk in front and more than
// 64 KiB of junk behind its end record, which archive/zip cannot find and
// 7-Zip opens. Only its local headers are walked; other formats come
// first, as a tar or 7z holding a stored ZIP has its header near the start.
func zipAfterJunk(data []byte) bool {
	i := bytes.Index(data[:min(len(data), 64<<10)], localHeaderSig)
	if i < 0 {
		return false
	}
	_, ok := parseLocalHeader(data, i)
	return ok
}

// zipEntries inspects a ZIP as every reader sees it: the entries its
// central directory lists, then those only its local headers show
// (localEntries).
func (in *inspector) zipEntries(b *budget, data []byte) {
	if covered, ok := in.zipDirectory(b, data); ok {
		in.localEntries(b, data, covered)
	}
}

// zipDirectory walks a ZIP's central directory with archive/zip, which
// unlike the archives package exposes the encryption flag and each entry's
// data offset. It returns the data spans the directory covered, by their
// start, and false when a limit stopped the inspection.
func (in *inspector) zipDirectory(b *budget, data []byte) (map[int64]zipSpan, bool) {
	covered := map[int64]zipSpan{}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		in.tag(TagCorrupt) // 7-Zip and WinRAR still extract it: the local headers are walked
		return covered, true
	}
	for _, m := range extraMethods {
		zr.RegisterDecompressor(m, zipDecompressor(m, in.lim))
	}
	if len(zr.File) > in.lim.MaxEntries {
		in.limit("entries")
		return nil, false
	}
	if overlapping(zr.File) {
		in.limit("overlapping entries")
		return nil, false
	}
	for _, f := range zr.File {
		e := entry{name: zipName(f.Name, f.NonUTF8), csize: int64(f.CompressedSize64), open: zipOpener(f, in.lim),
			encrypted: f.Flags&zipFlagEncrypted != 0 || f.Method == zipMethodAES, aliases: unicodePaths(f.Extra)}
		if off, err := f.DataOffset(); err == nil {
			covered[off] = zipSpan{off + int64(f.CompressedSize64), append([]string{e.name}, e.aliases...)}
		}
		if zipDir(f.Name, e.aliases) {
			continue
		}
		if err := in.entry(b, e); err != nil {
			in.extractError(err)
			return nil, false
		}
	}
	return covered, true
}

// zipOpener opens a directory entry's data as 7-Zip extracts it: decoded
// to its end, whatever uncompressed size the entry declares. archive/zip's
// Open trusts that size: it fails a read that goes past it and drops that
// read's bytes, and gives none of a last read that falls short of it, so a
// PE declared as 1 byte, or as more than it is, reached the scan as
// nothing. copyFile's limits bound the reading instead. A method we cannot
// decode still goes through Open, for its error.
func zipOpener(f *zip.File, lim Limits) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		dec := zipDecompressor(f.Method, lim)
		if dec == nil {
			return f.Open()
		}
		raw, err := f.OpenRaw()
		if err != nil {
			return nil, err
		}
		return dec(raw), nil
	}
}

// zipName decodes a name not flagged UTF-8 (APPNOTE 4.4.4 bit 11): Japanese
// archivers write Shift_JIS there, which mime.ToUTF8 detects.
func zipName(name string, nonUTF8 bool) string {
	if !nonUTF8 && utf8.ValidString(name) {
		return name
	}
	s, _ := mime.ToUTF8([]byte(name), "")
	return s
}

// overlapping reports entries whose compressed data share bytes: the
// overlapping-file zip bomb (Fifield 2019) and its simple form, many
// central-directory records pointing at one local file.
func overlapping(files []*zip.File) bool {
	type span struct{ start, end int64 }
	spans := make([]span, 0, len(files))
	for _, f := range files {
		off, err := f.DataOffset()
		if err != nil {
			continue
		}
		spans = append(spans, span{off, off + int64(f.CompressedSize64)})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end || spans[i].start == spans[i-1].start {
			return true
		}
	}
	return false
}

// archiveMagic are the archive and compression formats an entry is
// recognised as by its first bytes, to tag it nested without opening it.
var archiveMagic = [][]byte{
	[]byte("PK\x03\x04"), []byte("PK\x05\x06"), []byte("PK\x07\x08"), {0x1f, 0x8b}, []byte("7z\xbc\xaf\x27\x1c"),
	[]byte("Rar!\x1a\x07"), []byte("BZh"), []byte("\xfd7zXZ\x00"), {0x28, 0xb5, 0x2f, 0xfd}, []byte("MSCF\x00\x00\x00\x00"),
	{0x60, 0xea}, []byte("\x04\x22\x4d\x18"), []byte("LZIP"), tnefSignature,
}

// isArchive tells an archive by its bytes, falling back on the formats the
// archives package registers (tar has its magic at 257).
func isArchive(ctx context.Context, head []byte) bool {
	for _, m := range archiveMagic {
		if bytes.HasPrefix(head, m) {
			return true
		}
	}
	if len(head) > 262 && bytes.Equal(head[257:262], []byte("ustar")) {
		return true
	}
	if len(head) >= 7 && head[2] == '-' && head[3] == 'l' && head[6] == '-' { // LHA "-lh5-"
		return true
	}
	format, _, err := archives.Identify(ctx, "", bytes.NewReader(head))
	switch format.(type) {
	case nil, archives.Brotli, archives.Zlib:
		return false // no magic: the archives package guesses, and text often passes
	}
	return err == nil
}

// nestedZipBomb reads the directory of a ZIP inside the archive, without
// opening any of its entries, and reports a layer of a recursive bomb
// (42.zip): entries that declare more bytes than the limits allow, or a
// ratio no real file has. Declared sizes are evidence here, never a bound.
func nestedZipBomb(scan *fileScan, lim Limits) string {
	if !bytes.HasPrefix(scan.head, []byte("PK\x03\x04")) {
		return ""
	}
	zr, err := zip.NewReader(&sparseFile{head: scan.head, tail: scan.tail, size: scan.pos}, scan.pos)
	if err != nil {
		return ""
	}
	var total uint64
	for _, f := range zr.File {
		total += f.UncompressedSize64
		if f.UncompressedSize64 > ratioFloor && f.UncompressedSize64/max(f.CompressedSize64, 1) > uint64(lim.MaxRatio) {
			return "nested compression ratio"
		}
	}
	if total > uint64(lim.MaxTotalBytes) || len(zr.File) > lim.MaxEntries {
		return "nested declared size"
	}
	return ""
}

// sparseFile serves the head and tail of a file that was streamed: enough
// for archive/zip to read the end record and the central directory.
type sparseFile struct {
	head, tail []byte
	size       int64
}

func (s *sparseFile) ReadAt(p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	switch tailStart := s.size - int64(len(s.tail)); {
	case off < 0 || end > s.size:
		return 0, io.ErrUnexpectedEOF
	case end <= int64(len(s.head)):
		return copy(p, s.head[off:end]), nil
	case off >= tailStart:
		return copy(p, s.tail[off-tailStart:end-tailStart]), nil
	}
	return 0, errors.New("execfilter: outside the kept head and tail")
}
