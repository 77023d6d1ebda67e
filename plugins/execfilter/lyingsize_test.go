package execfilter

import (
	"archive/zip"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// lyingZip is a ZIP of one entry whose directory and local header declare
// an uncompressed size other than its data's. archive/zip refuses to read
// past a declared size ("zip: not a valid zip file", the bytes of that read
// dropped); 7-Zip decodes the data to its end and reports the size.
func lyingZip(t testing.TB, name string, data []byte, store bool, declared uint64) []byte {
	t.Helper()
	raw, method := deflate(data), zip.Deflate
	if store {
		raw, method = data, zip.Store
	}
	return zipOf(t, &zip.FileHeader{Name: name, Method: method, CRC32: crc32.ChecksumIEEE(data),
		CompressedSize64: uint64(len(raw)), UncompressedSize64: declared}, raw)
}

// TestZipLyingSize: an entry's declared size neither hides its bytes nor
// bounds the reading of them; the stage's own limits do.
func TestZipLyingSize(t *testing.T) {
	pe := peBytes()
	zeros := make([]byte, 8<<20)
	tests := []struct {
		name    string
		data    []byte
		tags    []string
		verdict sdk.Verdict
		limit   string
	}{
		{"pe named pdf, deflated, declared 0", lyingZip(t, "invoice.pdf", pe, false, 0),
			[]string{TagInArchive, TagMismatch}, sdk.VerdictFail, ""},
		{"pe named pdf, deflated, declared 1", lyingZip(t, "invoice.pdf", pe, false, 1),
			[]string{TagInArchive, TagMismatch}, sdk.VerdictFail, ""},
		{"pe named pdf, stored, declared 1", lyingZip(t, "invoice.pdf", pe, true, 1),
			[]string{TagInArchive, TagMismatch}, sdk.VerdictFail, ""},
		{"pe, declared larger", lyingZip(t, "invoice.pdf", pe, false, uint64(len(pe))*3),
			[]string{TagInArchive, TagMismatch}, sdk.VerdictFail, ""},
		{"bomb declared 10 bytes", lyingZip(t, "notes.txt", zeros, false, 10),
			[]string{TagLimit}, sdk.VerdictFail, "compression ratio"},
		{"text declared 1", lyingZip(t, "notes.txt", []byte("harmless notes"), false, 1),
			nil, sdk.VerdictPass, ""},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{"a.zip", "application/zip", tc.data}))
			want := slices.Sorted(slices.Values(tc.tags))
			if !slices.Equal(res.Tags, want) || res.Verdict != tc.verdict || res.Attrs["limit"] != tc.limit {
				t.Errorf("got %q %s limit %q; want %q %s %q", res.Tags, res.Verdict, res.Attrs["limit"], want, tc.verdict, tc.limit)
			}
		})
	}
}
