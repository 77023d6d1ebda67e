package execfilter

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"slices"
	"testing"
	"unicode/utf16"

	"github.com/ulikunitz/xz/lzma"

	"github.com/portcullis-mta/portcullis/sdk"
)

// 7z archives are built here byte by byte (7zFormat.txt): Go has no 7-Zip
// writer, and the hostile ones no writer would make.

// num7z is a 7z NUMBER: one byte below 0x80, else 0xff and eight bytes.
func num7z(v uint64) []byte {
	if v < 0x80 {
		return []byte{byte(v)}
	}
	return binary.LittleEndian.AppendUint64([]byte{0xff}, v)
}

// cat7z joins header pieces: bytes, single bytes and NUMBERs (uint64).
func cat7z(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case []byte:
			b = append(b, p...)
		case byte:
			b = append(b, p)
		case int:
			b = append(b, byte(p))
		case uint64:
			b = append(b, num7z(p)...)
		}
	}
	return b
}

// wrap7z puts the signature and start header in front of the packed
// streams and the header that follows them.
func wrap7z(packed, header []byte) []byte {
	start := binary.LittleEndian.AppendUint64(nil, uint64(len(packed)))
	start = binary.LittleEndian.AppendUint64(start, uint64(len(header)))
	start = binary.LittleEndian.AppendUint32(start, crc32.ChecksumIEEE(header))
	out := binary.LittleEndian.AppendUint32([]byte("7z\xbc\xaf\x27\x1c\x00\x04"), crc32.ChecksumIEEE(start))
	return slices.Concat(out, start, packed, header)
}

type file7z struct {
	name string
	data []byte
}

// header7z is the plain header of files stored (Copy coder) one folder
// each, and their packed streams.
func header7z(files ...file7z) (packed, header []byte) {
	n := uint64(len(files))
	var sizes, folders, names []byte
	for _, f := range files {
		packed = append(packed, f.data...)
		sizes = append(sizes, num7z(uint64(len(f.data)))...)
		folders = append(folders, 1, 0x01, 0x00) // one coder, a one-byte ID: Copy
		for _, u := range utf16.Encode([]rune(f.name + "\x00")) {
			names = binary.LittleEndian.AppendUint16(names, u)
		}
	}
	header = cat7z(id7zHeader,
		id7zMainStreamsInfo,
		id7zPackInfo, uint64(0), n, id7zSize, sizes, id7zEnd,
		id7zUnpackInfo, id7zFolder, n, 0, folders, id7zCodersUnpackSize, sizes, id7zEnd,
		id7zSubStreamsInfo, id7zEnd,
		id7zEnd,
		id7zFilesInfo, n, 0x11, uint64(len(names)+1), 0, names, id7zEnd,
		id7zEnd)
	return packed, header
}

func make7z(files ...file7z) []byte { return wrap7z(header7z(files...)) }

// lzma7z packs header as 7-Zip does an encoded header, after the files'
// packed streams: LZMA, the coder's properties its .lzma header's first
// five bytes.
func lzma7z(t testing.TB, packed, header []byte, declared uint64) []byte {
	var b bytes.Buffer
	w, err := lzma.WriterConfig{SizeInHeader: true, Size: int64(len(header))}.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(header)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	props, lz := b.Bytes()[:5], b.Bytes()[13:]
	encoded := cat7z(id7zEncodedHeader,
		id7zPackInfo, uint64(len(packed)), uint64(1), id7zSize, uint64(len(lz)), id7zEnd,
		id7zUnpackInfo, id7zFolder, uint64(1), 0, 1, 0x23, []byte(method7zLZMA), uint64(5), props,
		id7zCodersUnpackSize, declared, id7zEnd,
		id7zEnd)
	return wrap7z(slices.Concat(packed, lz), encoded)
}

// huge7z is the auditor's archive: a FilesInfo declaring 2^40 files in a
// 13-byte header, which ended the plugin with "fatal error: out of memory".
func huge7z(t testing.TB) []byte {
	b, err := hex.DecodeString("377abcaf271c00045e5f068f00000000000000000d000000000000000d521a6d0105ff00000000000100000000")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSevenZipHostileHeaders: a 7z header whose counts no archive could
// hold is reported (archive.corrupt, or archive.limit past the limits),
// never handed to a reader that would allocate from it or crash on it.
func TestSevenZipHostileHeaders(t *testing.T) {
	exe := file7z{"a.exe", peBytes()[:256]}
	packed, plain := header7z(exe, file7z{"b.txt", []byte("hi")})
	// A data folder's LZMA2 dictionary of 3 GiB (property 39): the decoder
	// allocates all of it when the entry is opened.
	dict := bytes.Replace(plain, []byte{id7zFolder, 2, 0, 1, 0x01, 0x00}, []byte{id7zFolder, 2, 0, 1, 0x21, 0x21, 1, 39}, 1)
	if bytes.Equal(dict, plain) {
		t.Fatal("no folder to give the dictionary to")
	}
	// A PPMd coder (order 6) with 3 GiB of model memory, which the decoder
	// allocates when the entry is opened.
	ppmd := bytes.Replace(plain, []byte{id7zFolder, 2, 0, 1, 0x01, 0x00}, []byte{id7zFolder, 2, 0, 1, 0x23, 3, 4, 1, 5, 6, 0, 0, 0, 0xc0}, 1)
	files40 := cat7z(id7zHeader, id7zFilesInfo, uint64(1<<40), id7zEnd, id7zEnd)
	tests := []struct {
		name  string
		data  []byte
		tags  []string
		limit string
	}{
		{"stored", make7z(exe), []string{TagInArchive}, ""},
		{"LZMA header", lzma7z(t, packed, plain, uint64(len(plain))), []string{TagInArchive}, ""},
		{"2^40 files", huge7z(t), []string{TagCorrupt}, ""},
		// numFiles 1 and no streams: sevenzip 1.6.1 dereferences a nil
		// pointer (struct.go:220); the recover reports it.
		{"file without streams", wrap7z(nil, cat7z(id7zHeader, id7zFilesInfo, 1, id7zEnd, id7zEnd)), []string{TagCorrupt}, ""},
		{"2^40 files packed", lzma7z(t, nil, files40, uint64(len(files40))), []string{TagCorrupt}, ""},
		{"2^40 pack streams", wrap7z(nil, cat7z(id7zHeader, id7zMainStreamsInfo, id7zPackInfo, 0, uint64(1<<40), id7zCRC, 1, id7zEnd, id7zEnd, id7zEnd)), []string{TagCorrupt}, ""},
		{"2^40 folders", wrap7z(nil, cat7z(id7zHeader, id7zMainStreamsInfo, id7zUnpackInfo, id7zFolder, uint64(1<<40), 0, id7zEnd, id7zEnd, id7zEnd)), []string{TagCorrupt}, ""},
		{"2^40 coder streams", wrap7z(nil, cat7z(id7zHeader, id7zMainStreamsInfo, id7zUnpackInfo, id7zFolder, 1, 0,
			1, 0x11, 0, uint64(1<<40), uint64(1<<40), id7zCodersUnpackSize, 1, id7zEnd, id7zEnd, id7zEnd)), []string{TagCorrupt}, ""},
		{"2^40 substreams", wrap7z(nil, cat7z(id7zHeader, id7zMainStreamsInfo, id7zUnpackInfo, id7zFolder, 1, 0, 1, 0x01, 0,
			id7zCodersUnpackSize, 1, id7zEnd, id7zSubStreamsInfo, id7zNumUnpackStream, uint64(1<<40), id7zCRC, 1, id7zEnd, id7zEnd, id7zEnd)), []string{TagCorrupt}, ""},
		{"packed header of 1 GiB", lzma7z(t, packed, plain, 1<<30), []string{TagLimit}, "7z header"},
		{"3 GiB dictionary", wrap7z(packed, dict), []string{TagLimit}, "dictionary"},
		{"3 GiB PPMd memory", wrap7z(packed, ppmd), []string{TagLimit}, "dictionary"},
		{"header checksum", append(make7z(exe)[:len(make7z(exe))-1], 1), []string{TagCorrupt}, ""},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{"a.7z", "application/x-7z-compressed", tc.data}))
			if !slices.Equal(res.Tags, tc.tags) || res.Attrs["limit"] != tc.limit {
				t.Errorf("tags %q limit %q, want %q %q", res.Tags, res.Attrs["limit"], tc.tags, tc.limit)
			}
		})
	}
}

// TestSevenZipCorruptBesideExe: the auditor's message, a hostile 7z and an
// executable beside it. The stage answers (no error, no crash), the 7z is
// corrupt and the executable still found.
func TestSevenZipCorruptBesideExe(t *testing.T) {
	st := newStage(t, nil)
	for name, data := range map[string][]byte{
		"2^40 files":           huge7z(t),
		"file without streams": wrap7z(nil, cat7z(id7zHeader, id7zFilesInfo, 1, id7zEnd, id7zEnd)),
	} {
		t.Run(name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{"a.7z", "application/x-7z-compressed", data},
				attach{"setup.exe", "application/octet-stream", peBytes()}))
			if want := []string{TagCorrupt, TagExecutable}; !slices.Equal(res.Tags, want) || res.Verdict != sdk.VerdictFail {
				t.Errorf("tags %q verdict %s, want %q fail", res.Tags, res.Verdict, want)
			}
		})
	}
}

// TestSevenZipEntriesLimit: a 7z listing more files than four times
// max_entries is stopped at its header, as archive.limit.
func TestSevenZipEntriesLimit(t *testing.T) {
	var files []file7z
	for range 9 {
		files = append(files, file7z{"f.txt", []byte("x")})
	}
	st := newStage(t, map[string]any{"limits": map[string]any{"max_entries": 2}})
	res := run(t, st, mimeMessage(attach{"a.7z", "application/x-7z-compressed", make7z(files...)}))
	if !slices.Equal(res.Tags, []string{TagLimit}) || res.Attrs["limit"] != "entries" {
		t.Errorf("tags %q limit %q, want archive.limit entries", res.Tags, res.Attrs["limit"])
	}
}

// FuzzSevenZipHeader fuzzes the header behind valid checksums, which
// FuzzInspect's mutations seldom keep: whatever it declares, the
// inspection must end without a panic or an allocation that kills the
// process.
func FuzzSevenZipHeader(f *testing.F) {
	packed, plain := header7z(file7z{"a.exe", peBytes()[:64]}, file7z{"b.txt", []byte("hi")})
	f.Add(packed, plain)
	f.Add([]byte(nil), cat7z(id7zHeader, id7zFilesInfo, 1, id7zEnd, id7zEnd))
	f.Add(packed, bytes.Replace(plain, []byte{id7zFolder, 2, 0, 1, 0x01, 0x00}, []byte{id7zFolder, 2, 0, 1, 0x21, 0x21, 1, 20}, 1))
	cfg, err := parseConfig(map[string]any{"limits": map[string]any{"max_entries": 20, "timeout": "2s"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, packed, header []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Limits.Timeout)
		defer cancel()
		in := newInspector(cfg)
		in.attachment(ctx, "a.7z", "application/x-7z-compressed", wrap7z(packed, header))
		res := in.result()
		if res.Verdict == "" {
			t.Fatal("no verdict")
		}
		if res.Attrs["limit"] == "time" {
			t.Fatalf("a header of %d bytes took the whole time limit", len(header))
		}
	})
}
