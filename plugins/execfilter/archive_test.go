package execfilter

import (
	"archive/zip"
	"bytes"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// rawZip is a ZIP of one entry whose data is written as given under
// method: a method no reader of ours decodes (PPMd 98, Deflate64 9) is
// what 7-Zip writes when asked, and extracts.
func rawZip(t testing.TB, name string, method uint16, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: method, CRC32: crc32.ChecksumIEEE(raw),
		CompressedSize64: uint64(len(raw)), UncompressedSize64: uint64(len(raw))})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestUnreadableEntryNamed: an entry whose bytes no reader of ours can
// decompress is still judged by its name, as 7-Zip and libarchive extract
// it; one with a harmless name is archive.corrupt.
func TestUnreadableEntryNamed(t *testing.T) {
	sevenZip := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join("testdata", "sevenzip", name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	ppmd := []byte("\x06\x00\x00\x01stands in for a PPMd stream")
	tests := []struct {
		name    string
		data    []byte
		tags    []string
		verdict sdk.Verdict
		files   string
	}{
		{"zip ppmd exe", rawZip(t, "evil.exe", 98, ppmd), []string{TagCorrupt, TagInArchive}, sdk.VerdictFail, "evil.exe"},
		{"zip deflate64 js", rawZip(t, "invoice.js", 9, ppmd), []string{TagCorrupt, TagInArchive}, sdk.VerdictFail, "invoice.js"},
		{"zip unknown method, local headers only", cutDirectory(t, rawZip(t, "evil.scr", 77, ppmd)), []string{TagCorrupt, TagInArchive}, sdk.VerdictFail, "evil.scr"},
		{"zip ppmd txt", rawZip(t, "notes.txt", 98, ppmd), []string{TagCorrupt}, sdk.VerdictNeutral, ""},
		{"7z deflate64 exe", sevenZip("deflate64.7z"), []string{TagCorrupt, TagInArchive}, sdk.VerdictFail, "run.exe"},
		{"7z ARMT filter exe", sevenZip("armt.7z"), []string{TagCorrupt, TagInArchive}, sdk.VerdictFail, "run.exe"},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{"a.bin", "application/octet-stream", tc.data}))
			if !slices.Equal(res.Tags, tc.tags) || res.Verdict != tc.verdict || res.Attrs["files"] != tc.files {
				t.Errorf("got %q %s files %q; want %q %s %q", res.Tags, res.Verdict, res.Attrs["files"], tc.tags, tc.verdict, tc.files)
			}
		})
	}
}
