package execfilter

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzInspect seeds")

// fuzzSeeds are small archives of every shape the inspector handles.
func fuzzSeeds(t testing.TB) map[string][]byte {
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
	}
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
// the archive, it must end within its limits without a panic.
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
		in := newInspector(cfg)
		in.attachment(context.Background(), "f.zip", "application/zip", data)
		res := in.result()
		if res.Verdict == "" {
			t.Fatal("no verdict")
		}
	})
}
