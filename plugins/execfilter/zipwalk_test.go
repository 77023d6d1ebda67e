package execfilter

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/portcullis-mta/portcullis/sdk"
)

// cutDirectory drops a ZIP's central directory and end record, as a
// damaged download or a deliberate trick leaves it: only the local
// headers remain.
func cutDirectory(t testing.TB, z []byte) []byte {
	t.Helper()
	eocd := bytes.LastIndex(z, []byte("PK\x05\x06"))
	if eocd < 0 {
		t.Fatal("no end record")
	}
	return z[:binary.LittleEndian.Uint32(z[eocd+16:])]
}

// claimsMore is a ZIP of one stored text file whose directory record
// claims hidden as part of that file's data: a local header behind it is
// what 7-Zip finds when it walks the headers.
func claimsMore(t testing.TB, hidden []byte) []byte {
	t.Helper()
	z := makeZip(t, zfile{name: "readme.txt", data: []byte("harmless notes"), store: true, sized: true})
	eocd := bytes.LastIndex(z, []byte("PK\x05\x06"))
	cdOff := binary.LittleEndian.Uint32(z[eocd+16:])
	cd := append([]byte{}, z[cdOff:eocd]...)
	grow := uint32(len(hidden))
	binary.LittleEndian.PutUint32(cd[20:], binary.LittleEndian.Uint32(cd[20:])+grow) // compressed size
	binary.LittleEndian.PutUint32(cd[24:], binary.LittleEndian.Uint32(cd[24:])+grow) // uncompressed size
	end := append([]byte{}, z[eocd:]...)
	binary.LittleEndian.PutUint32(end[16:], cdOff+grow)
	return concat(z[:cdOff], hidden, cd, end)
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func smallFiles(n int, prefix string) []zfile {
	var files []zfile
	for i := 0; i < n; i++ {
		files = append(files, zfile{name: fmt.Sprintf("%s%d.txt", prefix, i), data: []byte("x")})
	}
	return files
}

// TestZipReadersDisagree: entries that 7-Zip or WinRAR extract but the
// central directory archive/zip reads does not list.
func TestZipReadersDisagree(t *testing.T) {
	pe, txt := peBytes(), []byte("harmless notes")
	inner := makeZip(t, zfile{name: "deep.exe", data: pe})
	noDescriptor := cutDirectory(t, makeZip(t, zfile{name: "a.exe", data: pe}))
	noDescriptor = noDescriptor[:len(noDescriptor)-16] // PK\x07\x08, CRC, sizes
	tests := []struct {
		name    string
		data    []byte
		tags    []string
		verdict sdk.Verdict
		kinds   string
		files   string
	}{
		{"concatenated, exe in the first", concat(makeZip(t, zfile{name: "a.exe", data: pe}), makeZip(t, zfile{name: "readme.txt", data: txt})),
			[]string{TagInArchive}, sdk.VerdictFail, "pe", "a.exe"},
		{"concatenated, sizes in the headers", concat(makeZip(t, zfile{name: "a.exe", data: pe, sized: true}), makeZip(t, zfile{name: "readme.txt", data: txt, sized: true})),
			[]string{TagInArchive}, sdk.VerdictFail, "pe", "a.exe"},
		{"concatenated, stored pe named pdf", concat(makeZip(t, zfile{name: "invoice.pdf", data: pe, store: true}), makeZip(t, zfile{name: "readme.txt", data: txt})),
			[]string{TagInArchive, TagMismatch}, sdk.VerdictFail, "pe", "invoice.pdf"},
		{"three concatenated, exe in the middle", concat(makeZip(t, zfile{name: "a.txt", data: txt}), makeZip(t, zfile{name: "b.scr", data: pe}), makeZip(t, zfile{name: "c.txt", data: txt})),
			[]string{TagInArchive}, sdk.VerdictFail, "pe", "b.scr"},
		{"hidden behind a directory record that claims more", claimsMore(t, cutDirectory(t, makeZip(t, zfile{name: "a.exe", data: pe, store: true, sized: true}))),
			[]string{TagInArchive}, sdk.VerdictFail, "pe", "a.exe"},
		{"concatenated, clean", concat(makeZip(t, zfile{name: "a.txt", data: txt}), makeZip(t, zfile{name: "b.txt", data: txt})), nil, sdk.VerdictPass, "", ""},
		{"directory cut off", cutDirectory(t, makeZip(t, zfile{name: "readme.txt", data: txt}, zfile{name: "a.exe", data: pe})),
			[]string{TagCorrupt, TagInArchive}, sdk.VerdictFail, "pe", "a.exe"},
		{"directory cut off, sizes in the headers", cutDirectory(t, makeZip(t, zfile{name: "readme.txt", data: txt, sized: true}, zfile{name: "report.pdf", data: pe, sized: true})),
			[]string{TagCorrupt, TagInArchive, TagMismatch}, sdk.VerdictFail, "pe", "report.pdf"},
		{"directory cut off, clean", cutDirectory(t, makeZip(t, zfile{name: "a.txt", data: txt}, zfile{name: "b.txt", data: txt, store: true})),
			[]string{TagCorrupt}, sdk.VerdictNeutral, "", ""},
		{"directory cut off, shift_jis name", cutDirectory(t, makeZip(t, zfile{name: sjis("請求書.js"), data: []byte("x=1"), nonUTF8: true})),
			[]string{TagCorrupt, TagInArchive}, sdk.VerdictFail, "script", "請求書.js"},
		{"directory cut off, encrypted exe", cutDirectory(t, makeZip(t, zfile{name: "pay.exe", data: []byte("ciphertext"), encrypted: true})),
			[]string{TagCorrupt, TagEncrypted, TagInArchive}, sdk.VerdictFail, "script", "pay.exe"},
		// The stored ZIP's own headers are inside its data, which the walk
		// skips: still one level only.
		{"concatenated, zip inside the first", concat(makeZip(t, zfile{name: "inner.zip", data: inner, store: true}), makeZip(t, zfile{name: "b.txt", data: txt})),
			[]string{TagNested}, sdk.VerdictNeutral, "", ""},
		{"directory and data cut", makeZip(t, zfile{name: "a.exe", data: pe, sized: true, store: true})[:300],
			[]string{TagCorrupt, TagInArchive}, sdk.VerdictFail, "pe", "a.exe"},
		{"size unknown, no descriptor: the name alone", noDescriptor,
			[]string{TagCorrupt, TagInArchive}, sdk.VerdictFail, "script", "a.exe"},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{"a.zip", "application/zip", tc.data}))
			want := slices.Sorted(slices.Values(tc.tags))
			if !slices.Equal(res.Tags, want) || res.Verdict != tc.verdict || res.Attrs["kinds"] != tc.kinds || res.Attrs["files"] != tc.files {
				t.Errorf("got %q %s kinds %q files %q; want %q %s %q %q", res.Tags, res.Verdict, res.Attrs["kinds"], res.Attrs["files"],
					want, tc.verdict, tc.kinds, tc.files)
			}
		})
	}
}

// TestZipEntriesCountedOnce: the walk adds nothing to a ZIP whose
// directory lists every entry, and counts each entry of the others once.
func TestZipEntriesCountedOnce(t *testing.T) {
	cfg, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	normal := makeZip(t, zfile{name: "a.exe", data: peBytes()}, zfile{name: "b.txt", data: []byte("b")},
		zfile{name: "dir/", data: nil}, zfile{name: "c.bin", data: []byte("c"), store: true}, zfile{name: "d.txt", data: []byte("d"), sized: true})
	tests := []struct {
		name    string
		data    []byte
		entries int
	}{
		{"normal", normal, 4},
		{"junk in front", append([]byte("MZ self-extractor stub"), normal...), 4},
		{"concatenated", concat(normal, normal), 8},
		{"directory cut off", cutDirectory(t, normal), 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := newInspector(cfg)
			in.current = "a.zip"
			b := &budget{ctx: context.Background(), lim: cfg.Limits, compressed: int64(len(tc.data))}
			in.zipEntries(b, tc.data)
			if b.entries != tc.entries || !in.tags[TagInArchive] || in.limitHit != "" || !slices.Equal(in.files, []string{"a.exe"}) {
				t.Errorf("entries %d tags %v limit %q files %q; want %d entries, one a.exe", b.entries, in.tags, in.limitHit, in.files, tc.entries)
			}
		})
	}
}

// TestZipWalkLimits: entries found by their local headers count toward the
// same limits as the directory's, so the walk cannot be a bomb.
func TestZipWalkLimits(t *testing.T) {
	tests := []struct {
		name  string
		cfg   map[string]any
		data  []byte
		limit string // "*": any limit
	}{
		{"bomb without a directory", nil, cutDirectory(t, bombZip(t, 16, 256<<20)), "*"},
		{"entries without a directory", map[string]any{"limits": map[string]any{"max_entries": 10}}, cutDirectory(t, makeZip(t, smallFiles(20, "f")...)), "entries"},
		{"entries of both archives", map[string]any{"limits": map[string]any{"max_entries": 12}},
			concat(makeZip(t, smallFiles(8, "a")...), makeZip(t, smallFiles(8, "b")...)), "entries"},
		{"total bytes without a directory", map[string]any{"limits": map[string]any{"max_total_bytes": 3000}},
			cutDirectory(t, makeZip(t, zfile{name: "a", data: make([]byte, 2000), store: true}, zfile{name: "b", data: make([]byte, 2000), store: true})), "total bytes"},
		{"time without a directory", map[string]any{"limits": map[string]any{"timeout": "1ns"}}, cutDirectory(t, makeZip(t, zfile{name: "a", data: []byte("x")})), "time"},
		{"within limits", map[string]any{"limits": map[string]any{"max_entries": 16}},
			concat(makeZip(t, smallFiles(8, "a")...), makeZip(t, smallFiles(8, "b")...)), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, newStage(t, tc.cfg), mimeMessage(attach{"a.zip", "application/zip", tc.data}))
			limitOK := res.Attrs["limit"] == tc.limit || tc.limit == "*" && res.Attrs["limit"] != ""
			if !limitOK || slices.Contains(res.Tags, TagLimit) != (tc.limit != "") {
				t.Errorf("tags %q limit %q, want limit %q", res.Tags, res.Attrs["limit"], tc.limit)
			}
		})
	}
}

// FuzzZipLocalHeaders walks the local headers of any bytes as a split or
// junk-fronted ZIP is walked: every header that parses starts its data
// past itself and within the bytes, its names are UTF-8, and the walk
// ends within its limits without needing the time limit.
func FuzzZipLocalHeaders(f *testing.F) {
	cfg, err := parseConfig(map[string]any{"limits": map[string]any{"max_entries": 20, "max_entry_bytes": 1 << 20, "max_total_bytes": 2 << 20, "timeout": "2s"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for off := 0; ; off += len(localHeaderSig) {
			i := bytes.Index(data[off:], localHeaderSig)
			if i < 0 {
				break
			}
			off += i
			lh, ok := parseLocalHeader(data, off)
			if !ok {
				continue
			}
			if lh.start <= off || lh.start > len(data) {
				t.Fatalf("header at %d: data at %d of %d", off, lh.start, len(data))
			}
			for _, n := range append([]string{lh.name}, lh.aliases...) {
				if !utf8.ValidString(n) {
					t.Fatalf("header at %d: name %q not UTF-8", off, n)
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Limits.Timeout)
		defer cancel()
		in := newInspector(cfg)
		in.localEntries(&budget{ctx: ctx, lim: cfg.Limits, compressed: int64(len(data))}, data, nil)
		if res := in.result(); res.Verdict == "" || res.Attrs["limit"] == "time" {
			t.Fatalf("verdict %q, limit %q", res.Verdict, res.Attrs["limit"])
		}
	})
}
