package execfilter

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mholt/archives"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzInspect seeds")

// fuzzSeeds are small archives of every shape the inspector handles.
func fuzzSeeds(t testing.TB) map[string][]byte {
	packed, header := header7z(file7z{"a.exe", peBytes()[:128]})
	return map[string][]byte{
		"zip":       makeZip(t, zfile{name: "a.exe", data: peBytes()[:128]}, zfile{name: "b.txt", data: []byte("hi")}),
		"nested":    makeZip(t, zfile{name: "in.zip", data: makeZip(t, zfile{name: "x", data: []byte("x")}), store: true}),
		"encrypted": makeZip(t, zfile{name: "e", data: []byte("ct"), encrypted: true}),
		"sjis":      makeZip(t, zfile{name: sjis("名前.js"), data: []byte("1"), nonUTF8: true}),
		"targz":     tarGz(t, "bin/x", elfBytes()),
		"gz":        gz([]byte("#!/bin/sh\n")),
		"junkzip":   append([]byte("junk"), makeZip(t, zfile{name: "a", data: []byte("a")})...),
		"overlap":   overlapZip(t, 3, 1<<20),
		"tnef":      tnef(tf("a.exe", peBytes()[:128]), tf("b.zip", makeZip(t, zfile{name: "c.js", data: []byte("1")}))),
		"tnefnest":  tnef(tf("winmail.dat", tnef(tf("x", []byte("x"))))),
		// ZIPs whose readers disagree: two concatenated, and directories
		// cut off (sizes in a data descriptor, in the local header, neither).
		"concat":   append(makeZip(t, zfile{name: "a.exe", data: peBytes()[:128]}), makeZip(t, zfile{name: "b.txt", data: []byte("hi")})...),
		"cutdir":   cutDirectory(t, makeZip(t, zfile{name: sjis("名前.js"), data: []byte("1"), nonUTF8: true}, zfile{name: "e", data: []byte("ct"), encrypted: true})),
		"cutsized": cutDirectory(t, makeZip(t, zfile{name: "a.exe", data: peBytes()[:128], sized: true}, zfile{name: "b", data: []byte("b"), sized: true, store: true})),
		"nodesc":   makeZip(t, zfile{name: "a.exe", data: peBytes()[:128]})[:60],
		"tar":      tarFile(t, "a.exe", peBytes()[:128]),
		"xz":       compress(t, archives.Xz{}, []byte("#!/bin/sh\n")),
		"7z":       make7z(file7z{"a.exe", peBytes()[:128]}, file7z{"b.txt", []byte("hi")}),
		"7zlzma":   lzma7z(t, packed, header, uint64(len(header))),
		// The auditor's 7z headers: 2^40 files (out of memory in the
		// reader) and one file without streams (a nil pointer).
		"7zhuge":      huge7z(t),
		"7znostreams": wrap7z(nil, cat7z(id7zHeader, id7zFilesInfo, 1, id7zEnd, id7zEnd)),
		"rar":         makeRar5(file5{"a.exe", peBytes()[:128], 128, 0}, file5{"b.txt", []byte("hi"), 2, 0}),
		"rarwindow":   makeRar5(file5{"a.exe", peBytes()[:128], 4 << 30, 0x80 | 15<<10}),
		// Entries no reader of ours decompresses: judged by their names.
		"zipppmd":   rawZip(t, "a.exe", 98, []byte("\x06\x00\x00\x01ppmd")),
		"zipmethod": cutDirectory(t, rawZip(t, "a.js", 77, []byte("x"))),
		// Methods decoded besides store and deflate.
		"zipbzip2": zipMethodFile(t, "bzip2.zip", nil),
		"ziplzma":  zipMethodFile(t, "lzma.zip", nil),
		"zipxz":    zipMethodFile(t, "xz.zip", nil),
		"zipzstd":  cutDirectory(t, zstdZip(t, "a.exe", peBytes()[:128])),
		// Names in Unicode Path fields, read from the directory and the local headers.
		"upath":     upathZip(t, "a.txt", "a.js", []byte("1")),
		"upathcut":  cutDirectory(t, upathZip(t, "a.txt", "a.js", []byte("1"))),
		"tarlink":   linkTar(t, []byte("1"), "a.js", tar.TypeLink),
		"gzname":    gzNamed([]byte("1"), "a.js"),
		"tgzname":   gzNamed(tarFile(t, "a", []byte("1")), "a.js"),
		"localname": localRenamed(t, "a.txt", "a.exe", []byte("1")),
		"split":     concat([]byte("PK\x07\x08"), cutDirectory(t, makeZip(t, zfile{name: "a.exe", data: []byte("1")}))),
		"junkboth":  concat([]byte("junk"), makeZip(t, zfile{name: "a.exe", data: []byte("1")}), make([]byte, 70000)),
	}
}

// tarFile is a tar of one file.
func tarFile(t testing.TB, name string, data []byte) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Close()
	return b.Bytes()
}

// TestWriteFuzzSeeds keeps the committed corpus in step with the builders.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		return
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzInspect")
	os.MkdirAll(dir, 0o755)
	for name, b := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzInspect feeds arbitrary attachment bytes to the inspector: whatever
// the archive, it must end within its limits without a panic, and an
// input of fuzzing size must not need the time limit (a walk that does is
// worse than linear somewhere).
func FuzzInspect(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	cfg, err := parseConfig(map[string]any{
		"limits":     map[string]any{"max_entries": 20, "max_entry_bytes": 1 << 20, "max_total_bytes": 2 << 20, "timeout": "2s"},
		"signatures": []any{map[string]any{"name": "s", "hex": "4d5a"}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// As Stage.inspect runs it: within the time limit.
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Limits.Timeout)
		defer cancel()
		in := newInspector(cfg)
		in.attachment(ctx, "f.zip", "application/zip", data)
		res := in.result()
		if res.Verdict == "" {
			t.Fatal("no verdict")
		}
		if res.Attrs["limit"] == "time" && len(data) < 1<<20 {
			t.Fatalf("%d bytes took the whole time limit", len(data))
		}
	})
}
