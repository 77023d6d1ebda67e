package execfilter

import (
	"slices"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// FuzzZipLyingSize: a PE in a ZIP is found whatever uncompressed size the
// entry declares and whatever follows its header, stored or deflated; or
// the archive is a bomb by the stage's limits (archive.limit), never a
// pass.
func FuzzZipLyingSize(f *testing.F) {
	for _, d := range []uint64{0, 1, 2, 1 << 20, 1<<32 - 1, 1 << 40} {
		f.Add([]byte("tail"), false, d)
		f.Add([]byte{}, true, d)
	}
	st := newStage(f, nil)
	pe := peBytes()
	f.Fuzz(func(t *testing.T, tail []byte, store bool, declared uint64) {
		if len(tail) > 1<<16 {
			return
		}
		data := append(slices.Clip(pe), tail...)
		res := run(t, st, mimeMessage(attach{"a.zip", "application/zip", lyingZip(t, "invoice.pdf", data, store, declared)}))
		if res.Verdict != sdk.VerdictFail || !slices.Contains(res.Tags, TagInArchive) && !slices.Contains(res.Tags, TagLimit) {
			t.Fatalf("PE + %d bytes declared %d (store %v): %s %q %v", len(tail), declared, store, res.Verdict, res.Tags, res.Attrs)
		}
	})
}
