package execfilter

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/portcullis-mta/portcullis/sdk"
)

// rawZip is a ZIP of one entry whose data is written as given under
// method: a method no reader of ours decodes (PPMd 98, Deflate64 9) is
// what 7-Zip writes when asked, and extracts.
func rawZip(t testing.TB, name string, method uint16, raw []byte) []byte {
	t.Helper()
	return zipOf(t, &zip.FileHeader{Name: name, Method: method, CRC32: crc32.ChecksumIEEE(raw),
		CompressedSize64: uint64(len(raw)), UncompressedSize64: uint64(len(raw))}, raw)
}

// zipOf is a ZIP of one entry with header h and raw (already compressed)
// bytes, written as they are.
func zipOf(t testing.TB, h *zip.FileHeader, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(h)
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

// zipMethodFile reads a ZIP of testdata/zip, with the data of its one
// entry passed through patch when it is not nil.
func zipMethodFile(t testing.TB, name string, patch func(raw []byte)) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "zip", name))
	if err != nil {
		t.Fatal(err)
	}
	if patch != nil {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		off, err := zr.File[0].DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		patch(data[off:])
	}
	return data
}

// zstdZip is a ZIP of one file packed with Zstandard (method 93), as
// WinZip writes it.
func zstdZip(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zipMethodZstd, func(w io.Writer) (io.WriteCloser, error) { return zstd.NewWriter(w) })
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zipMethodZstd})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// unlistedXzBlock is an XZ stream of two blocks, the first with a 4 KiB
// dictionary, the second with LZMA2 dictionary property dictProp, whose
// index lists one record covering both.
func unlistedXzBlock(dictProp byte) []byte {
	blockHeader := func(prop byte) []byte {
		h := []byte{2, 0x00, 0x21, 0x01, prop, 0, 0, 0} // size, flags, LZMA2 filter and its property, padding
		return binary.LittleEndian.AppendUint32(h, crc32.ChecksumIEEE(h))
	}
	s := binary.LittleEndian.AppendUint32([]byte("\xfd7zXZ\x00\x00\x00"), crc32.ChecksumIEEE([]byte{0, 0}))
	start := len(s)
	for _, prop := range []byte{0, dictProp} {
		s = append(s, blockHeader(prop)...)
		s = append(s, 0x01, 0x00, 0x00, 'A', 0x00) // one uncompressed chunk, then the end
		for (len(s)-start)%4 != 0 {
			s = append(s, 0)
		}
	}
	idx := binary.AppendUvarint(binary.AppendUvarint(binary.AppendUvarint([]byte{0}, 1), uint64(len(s)-start)), 2)
	for len(idx)%4 != 0 {
		idx = append(idx, 0)
	}
	s = append(s, binary.LittleEndian.AppendUint32(idx, crc32.ChecksumIEEE(idx))...)
	footer := append(binary.LittleEndian.AppendUint32(nil, uint32((len(idx)+4)/4-1)), 0, 0)
	s = binary.LittleEndian.AppendUint32(s, crc32.ChecksumIEEE(footer))
	return append(append(s, footer...), 'Y', 'Z')
}

// TestZipMethods: entries packed with bzip2, LZMA, XZ or Zstandard are
// decoded, found by the central directory and by the local headers alike,
// and a dictionary the decoder would allocate past the limits stops the
// inspection as 7z's does.
func TestZipMethods(t *testing.T) {
	script := []byte("#!/bin/sh\necho hi\n")
	hugeLZMA := func(raw []byte) { copy(raw[5:], []byte{0xff, 0xff, 0xff, 0xff}) } // after version, size, lc/lp/pb
	hugeXz := func(raw []byte) {
		if !bytes.Equal(raw[14:16], []byte{0x21, 0x01}) { // stream header, block size and flags, LZMA2 filter
			t.Fatalf("xz.zip's first filter is not LZMA2: % x", raw[:24])
		}
		raw[16] = 40                                                            // 4 GiB
		binary.LittleEndian.PutUint32(raw[20:], crc32.ChecksumIEEE(raw[12:20])) // the block header's CRC32
	}
	tests := []struct {
		name  string
		data  []byte
		tags  []string
		limit string
	}{
		{"bzip2", zipMethodFile(t, "bzip2.zip", nil), []string{TagInArchive}, ""},
		{"lzma", zipMethodFile(t, "lzma.zip", nil), []string{TagInArchive}, ""},
		{"xz", zipMethodFile(t, "xz.zip", nil), []string{TagInArchive}, ""},
		{"zstd", zstdZip(t, "notes.txt", script), []string{TagInArchive}, ""},
		{"bzip2, local headers only", cutDirectory(t, zipMethodFile(t, "bzip2.zip", nil)), []string{TagCorrupt, TagInArchive}, ""},
		{"zstd, local headers only", cutDirectory(t, zstdZip(t, "notes.txt", script)), []string{TagCorrupt, TagInArchive}, ""},
		{"lzma dictionary of 4 GiB", zipMethodFile(t, "lzma.zip", hugeLZMA), []string{TagLimit}, "dictionary"},
		{"xz dictionary of 4 GiB", zipMethodFile(t, "xz.zip", hugeXz), []string{TagLimit}, "dictionary"},
		// A second block the index does not list, with a 4 GiB dictionary:
		// a check of the listed blocks passed it, and the decoder allocated
		// 4 GiB (a code review's find).
		{"xz second block of 4 GiB", rawZip(t, "notes.txt", zipMethodXz, unlistedXzBlock(40)), []string{TagLimit}, "dictionary"},
		// A frame header with a window of 4 GiB (RFC 8878 3.1.1.1.2: exponent 22), then one raw block.
		{"zstd window of 4 GiB", rawZip(t, "notes.txt", zipMethodZstd, []byte("\x28\xb5\x2f\xfd\x00\xb0\x09\x00\x00x")), []string{TagLimit}, "dictionary"},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{"a.zip", "application/zip", tc.data}))
			files := "notes.txt"
			if tc.limit != "" {
				files = ""
			}
			if !slices.Equal(res.Tags, tc.tags) || res.Attrs["limit"] != tc.limit || res.Attrs["files"] != files {
				t.Errorf("got %q limit %q files %q; want %q %q %q", res.Tags, res.Attrs["limit"], res.Attrs["files"], tc.tags, tc.limit, files)
			}
		})
	}
}

// upathExtra is an Info-ZIP Unicode Path extra field naming the entry
// name, with the CRC-32 of the header's name hdr (APPNOTE 4.6.9).
func upathExtra(hdr, name string) []byte {
	b := binary.LittleEndian.AppendUint16(nil, zipExtraUnicodePath)
	b = binary.LittleEndian.AppendUint16(b, uint16(5+len(name)))
	b = append(b, 1)
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE([]byte(hdr)))
	return append(b, name...)
}

// upathZip is a ZIP of one file named hdr in its headers and upath in the
// Unicode Path field of both (archive/zip writes Extra to each).
func upathZip(t testing.TB, hdr, upath string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: hdr, Method: zip.Deflate, Extra: upathExtra(hdr, upath)})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestZipUnicodePath: the name a Unicode Path field gives an entry, which
// 7-Zip, unzip and libarchive extract it under, is judged besides the
// header's.
func TestZipUnicodePath(t *testing.T) {
	txt := []byte("var s = 1;\n")
	tests := []struct {
		name  string
		data  []byte
		tags  []string
		files string
	}{
		{"js behind readme.txt", upathZip(t, "readme.txt", "invoice.js", txt), []string{TagInArchive}, "invoice.js"},
		{"hta behind readme.txt, local headers only", cutDirectory(t, upathZip(t, "readme.txt", "invoice.hta", txt)),
			[]string{TagCorrupt, TagInArchive}, "invoice.hta"},
		{"pe named jpg, exe in the field", upathZip(t, "photo.jpg", "photo.exe", peBytes()), []string{TagInArchive, TagMismatch}, "photo.jpg,photo.exe"},
		{"Japanese name, harmless", upathZip(t, sjis("請求書.txt"), "請求書.txt", txt), nil, ""},
		{"field names the header's name", upathZip(t, "readme.txt", "readme.txt", txt), nil, ""},
		// A directory entry the field names as a file: unzip and bsdtar
		// extract its bytes as invoice.js (a code review's find).
		{"js behind a directory", upathZip(t, "docs/", "invoice.js", txt), []string{TagInArchive}, "invoice.js"},
		{"js behind a directory, local headers only", cutDirectory(t, upathZip(t, "docs/", "invoice.js", txt)),
			[]string{TagCorrupt, TagInArchive}, "invoice.js"},
		{"a directory that stays one", upathZip(t, "docs/", "書類/", nil), nil, ""},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{"docs.zip", "application/zip", tc.data}))
			if !slices.Equal(res.Tags, tc.tags) || res.Attrs["files"] != tc.files {
				t.Errorf("got %q files %q; want %q %q", res.Tags, res.Attrs["files"], tc.tags, tc.files)
			}
		})
	}
}

// linkTar is a tar of notes.txt holding data and a link of type flag to
// it named link.
func linkTar(t testing.TB, data []byte, link string, flag byte) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "notes.txt", Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	if err := tw.WriteHeader(&tar.Header{Name: link, Mode: 0o644, Linkname: "notes.txt", Typeflag: flag}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestTarLinkNamed: a tar link extracts as a file under its own name,
// which is judged.
func TestTarLinkNamed(t *testing.T) {
	js := []byte("var s = new ActiveXObject('WScript.Shell');\n")
	tests := []struct {
		name  string
		data  []byte
		tags  []string
		files string
	}{
		{"hard link invoice.js", linkTar(t, js, "invoice.js", tar.TypeLink), []string{TagInArchive}, "invoice.js"},
		{"hard link, gzipped", gz(linkTar(t, js, "invoice.js", tar.TypeLink)), []string{TagInArchive}, "invoice.js"},
		{"symbolic link run.exe", linkTar(t, js, "run.exe", tar.TypeSymlink), []string{TagInArchive}, "run.exe"},
		{"hard link copy.txt", linkTar(t, js, "copy.txt", tar.TypeLink), nil, ""},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{"docs.tar", "application/x-tar", tc.data}))
			if !slices.Equal(res.Tags, tc.tags) || res.Attrs["files"] != tc.files {
				t.Errorf("got %q files %q; want %q %q", res.Tags, res.Attrs["files"], tc.tags, tc.files)
			}
		})
	}
}

// gzNamed is data gzipped with name in the header's FNAME field.
func gzNamed(data []byte, name string) []byte {
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	gw.Name = name
	gw.Write(data)
	gw.Close()
	return buf.Bytes()
}

// TestGzipStoredName: the name a gzip header stores, which gunzip -N and
// 7-Zip extract the file under, is judged besides the attachment's.
func TestGzipStoredName(t *testing.T) {
	js := []byte("var s = new ActiveXObject('WScript.Shell');\n")
	tests := []struct {
		name, attachment string
		data             []byte
		tags             []string
		files            string
	}{
		{"js in invoice.gz", "invoice.gz", gzNamed(js, "invoice.js"), []string{TagInArchive}, "invoice.js"},
		{"js in invoice.pdf.gz", "invoice.pdf.gz", gzNamed(js, "invoice.js"), []string{TagInArchive}, "invoice.js"},
		{"pe named pdf in the header", "report.gz", gzNamed(peBytes(), "report.pdf"), []string{TagInArchive, TagMismatch}, "report,report.pdf"},
		{"tgz named js", "docs.tgz", gzNamed(tarFile(t, "notes.txt", js), "docs.js"), []string{TagInArchive}, "docs.js"},
		{"honest name", "notes.txt.gz", gzNamed(js, "notes.txt"), nil, ""},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{tc.attachment, "application/gzip", tc.data}))
			if !slices.Equal(res.Tags, tc.tags) || res.Attrs["files"] != tc.files {
				t.Errorf("got %q files %q; want %q %q", res.Tags, res.Attrs["files"], tc.tags, tc.files)
			}
		})
	}
}

// localRenamed is a ZIP of one file that its central directory names dir
// and its local header local (of the same length, so no offset moves).
func localRenamed(t testing.TB, dir, local string, data []byte) []byte {
	t.Helper()
	if len(dir) != len(local) {
		t.Fatal("names of different lengths")
	}
	z := makeZip(t, zfile{name: dir, data: data, store: true, sized: true})
	copy(z[30:], local) // the first local header's name
	return z
}

// TestZipLocalName: a name only the local header gives an entry, which
// the extractors that walk the local headers use, is judged.
func TestZipLocalName(t *testing.T) {
	js := []byte("var s = new ActiveXObject('WScript.Shell');\n")
	tests := []struct {
		name  string
		data  []byte
		tags  []string
		files string
	}{
		{"js behind readme.txt", localRenamed(t, "readme.txt", "invoice.js", js), []string{TagInArchive}, "invoice.js"},
		{"exe behind a.txt", localRenamed(t, "a.txt", "a.exe", js), []string{TagInArchive}, "a.exe"},
		{"both harmless", localRenamed(t, "readme.txt", "readme.md~", js), nil, ""},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{"docs.zip", "application/zip", tc.data}))
			if !slices.Equal(res.Tags, tc.tags) || res.Attrs["files"] != tc.files {
				t.Errorf("got %q files %q; want %q %q", res.Tags, res.Attrs["files"], tc.tags, tc.files)
			}
		})
	}
}

// TestZipOutOfPlace: a ZIP whose directory no reader of ours finds, the
// first part of a split archive and one between two runs of junk, is
// walked by its local headers, as 7-Zip lists it.
func TestZipOutOfPlace(t *testing.T) {
	pe, junk := peBytes(), []byte(strings.Repeat("JUNK", 10))
	split := cutDirectory(t, makeZip(t, zfile{name: "evil.exe", data: pe}))
	tests := []struct {
		name  string
		data  []byte
		tags  []string
		files string
	}{
		{"split, first part", concat([]byte("PK\x07\x08"), split[:len(split)/2]), []string{TagCorrupt, TagInArchive}, "evil.exe"},
		{"spanned, temporary marker", concat([]byte("PK00"), split), []string{TagCorrupt, TagInArchive}, "evil.exe"},
		{"junk before and 70 KB after", concat(junk, makeZip(t, zfile{name: "evil.exe", data: pe}, zfile{name: "a.js", data: []byte("x=1")}), make([]byte, 70000)),
			[]string{TagInArchive}, "evil.exe,a.js"},
		{"junk both, clean", concat(junk, makeZip(t, zfile{name: "a.txt", data: []byte("x=1")}), make([]byte, 70000)), nil, ""},
		{"no header at all", concat(junk, make([]byte, 70000)), nil, ""},
		// A ZIP stored in a tar has its local header at 512: the tar is
		// read first, its ZIP not opened.
		{"tar holding a stored zip", tarFiles(t, "in.zip", makeZip(t, zfile{name: "deep.js", data: []byte("x"), store: true}),
			"big.bin", make([]byte, 70000), "evil.exe", pe), []string{TagNested, TagInArchive}, "evil.exe"},
		// A tar whose last member is a stored ZIP ends with that ZIP's end
		// record: it was read only as a ZIP, and the tar's evil.exe went
		// unseen. Both readings are walked (unzip opens the inner ZIP).
		{"tar ending in a stored zip", tarFiles(t, "evil.exe", pe, "in.zip", makeZip(t, zfile{name: "deep.js", data: []byte("x"), store: true})),
			[]string{TagNested, TagInArchive}, "deep.js,evil.exe"},
		{"tar ending in a clean stored zip", tarFiles(t, "evil.exe", pe, "in.zip", makeZip(t, zfile{name: "a.txt", data: []byte("x"), store: true})),
			[]string{TagNested, TagInArchive}, "evil.exe"},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{"x.z01", "application/octet-stream", tc.data}))
			if !slices.Equal(res.Tags, tc.tags) || res.Attrs["files"] != tc.files {
				t.Errorf("got %q files %q; want %q %q", res.Tags, res.Attrs["files"], tc.tags, tc.files)
			}
		})
	}
}

// tarFiles is a tar of files given as name, data, name, data...
func tarFiles(t testing.TB, files ...any) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i := 0; i < len(files); i += 2 {
		data := files[i+1].([]byte)
		if err := tw.WriteHeader(&tar.Header{Name: files[i].(string), Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
