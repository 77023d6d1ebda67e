package execfilter

import (
	"bytes"
	"errors"
	"io"

	"github.com/mholt/archives"
	"github.com/nwaples/rardecode/v2"
)

// minDict is the decoder dictionary always allowed: 7-Zip's largest
// preset (-mx9, 64 MiB, which it shrinks for smaller data) and WinRAR's
// RAR5 default (32 MiB) fit in it.
const minDict = 64 << 20

// maxDict is the largest dictionary (LZMA, LZMA2, RAR window) an archive
// may ask for. Decoders allocate all of it when they start, whatever the
// data; past max_total_bytes it would hold bytes the limits never let us
// read.
func maxDict(lim Limits) int64 { return max(minDict, lim.MaxTotalBytes) }

// isRar tells a RAR, also one compressed whole.
func isRar(format archives.Format) bool {
	if ca, ok := format.(archives.CompressedArchive); ok && ca.Compression != nil {
		_, ok := ca.Extraction.(archives.Rar)
		return ok
	}
	_, ok := format.(archives.Rar)
	return ok
}

// rarEntries walks a RAR with rardecode itself, not through the archives
// package, for its MaxDictionarySize option: rardecode allocates the
// window a file header declares (up to 4 GiB by default, bounded only by
// the unpacked size the header also declares) as soon as Next reaches the
// header, so a 300-byte RAR5 cost 4 GiB.
func (in *inspector) rarEntries(b *budget, format archives.Format, data []byte) {
	var r io.Reader = bytes.NewReader(data)
	if ca, ok := format.(archives.CompressedArchive); ok { // a.rar.gz
		rc, err := ca.Compression.OpenReader(r)
		if err != nil {
			in.tag(TagCorrupt)
			return
		}
		defer rc.Close()
		r = rc
	}
	rr, err := rardecode.NewReader(r, rardecode.MaxDictionarySize(maxDict(in.lim)))
	for err == nil {
		var h *rardecode.FileHeader
		if err = b.ctx.Err(); err != nil {
			break
		}
		if h, err = rr.Next(); err != nil {
			break
		}
		if h.IsDir {
			continue
		}
		open := func() (io.ReadCloser, error) { return io.NopCloser(rr), nil }
		err = in.entry(b, entry{name: h.Name, open: open})
	}
	switch {
	case err == io.EOF:
	case errors.Is(err, rardecode.ErrDictionaryTooLarge):
		in.limit("dictionary")
	default:
		in.extractError(err)
	}
}
