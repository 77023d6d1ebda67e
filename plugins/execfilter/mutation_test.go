package execfilter

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/mime"
)

// TestNoMessage: a check without a message is verdict none.
func TestNoMessage(t *testing.T) {
	res, err := newStage(t, nil).Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData})
	if err != nil || res.Verdict != sdk.VerdictNone {
		t.Errorf("no message: %+v %v, want none", res, err)
	}
}

// TestWalkerLimitsFirstReported: each of the MIME walker's part, depth and
// total limits is archive.limit, and attrs.limit names the first one hit.
func TestWalkerLimitsFirstReported(t *testing.T) {
	cfg, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &Stage{cfg: cfg}
	for _, f := range []string{mime.FindPartsLimit, mime.FindDepthLimit, mime.FindTotalLimit} {
		res := st.inspect(context.Background(), &mime.Message{Findings: []string{f}})
		if res.Verdict != sdk.VerdictFail || res.Attrs["limit"] != f {
			t.Errorf("%s: %s limit %q", f, res.Verdict, res.Attrs["limit"])
		}
	}
	res := st.inspect(context.Background(), &mime.Message{Findings: []string{mime.FindTotalLimit, mime.FindPartsLimit}})
	if res.Attrs["limit"] != mime.FindTotalLimit {
		t.Errorf("two limits: attrs.limit %q, want the first, %s", res.Attrs["limit"], mime.FindTotalLimit)
	}
}

// TestResultVerdictAndScore: a signature alone fails; the score is the
// number of distinct tags; attrs.files holds at most 10 names.
func TestResultVerdictAndScore(t *testing.T) {
	st := newStage(t, map[string]any{"signatures": []any{map[string]any{"name": "mark", "hex": "6d61726b21"}}})
	res := run(t, st, mimeMessage(attach{"a.bin", "application/octet-stream", []byte("a mark! here")}))
	if res.Verdict != sdk.VerdictFail || res.Score != 1 {
		t.Errorf("signature only: %s score %v, want fail 1", res.Verdict, res.Score)
	}
	var parts []attach
	for i := 0; i < 12; i++ {
		parts = append(parts, attach{fmt.Sprintf("f%d.pdf", i), "application/pdf", peBytes()})
	}
	res = run(t, newStage(t, nil), mimeMessage(parts...))
	if n := len(strings.Split(res.Attrs["files"], ",")); n != 10 || res.Score != 2 {
		t.Errorf("12 executables named .pdf: %d files, score %v (tags %q), want 10 files, score 2", n, res.Score, res.Tags)
	}
}

// TestNameRules: a DOS executable named .txt is a name mismatch; one with
// no name is not; `extensions` entries may start with '.', content_types
// match whatever their case; signature names are unique.
func TestNameRules(t *testing.T) {
	dos := append([]byte("MZ"), make([]byte, 0x80)...)
	st := newStage(t, nil)
	if res := run(t, st, mimeMessage(attach{"readme.txt", "application/octet-stream", dos})); !slices.Contains(res.Tags, TagMismatch) {
		t.Errorf("DOS program named .txt: tags %q", res.Tags)
	}
	if res := run(t, st, mimeMessage(attach{"", "application/octet-stream", peBytes()})); !slices.Equal(res.Tags, []string{TagExecutable}) {
		t.Errorf("nameless PE: tags %q, want [executable]", res.Tags)
	}
	custom := newStage(t, map[string]any{"extensions": []any{".Foo"}, "content_types": []any{"Application/X-Custom"}})
	if res := run(t, custom, mimeMessage(attach{"a.foo", "application/octet-stream", []byte("x")})); res.Verdict != sdk.VerdictFail {
		t.Errorf("extension .Foo: %s %q", res.Verdict, res.Tags)
	}
	if res := run(t, custom, mimeMessage(attach{"a.dat", "application/x-custom", []byte("x")})); res.Verdict != sdk.VerdictFail {
		t.Errorf("content type Application/X-Custom: %s %q", res.Verdict, res.Tags)
	}
	err := New().Configure(context.Background(), sdk.Env{}, map[string]any{"signatures": []any{
		map[string]any{"name": "a", "hex": "00"}, map[string]any{"name": "a", "hex": "01"}}})
	if err == nil {
		t.Error("two signatures named a accepted")
	}
}

// TestKindBoundaries: an old Java class (version 46) is Java, not a fat
// Mach-O; a signature at an offset ending at the file's last byte matches;
// a signature split across two chunks of an entry's bytes is found.
func TestKindBoundaries(t *testing.T) {
	if k := kindOf([]byte{0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 46}); k != kindJava {
		t.Errorf("class version 46: %q, want java", k)
	}
	st := newStage(t, map[string]any{"signatures": []any{
		map[string]any{"name": "pdfhead", "hex": "255044462d", "offset": 0},
		map[string]any{"name": "deadbeef", "hex": "de ad be ef"}}})
	if res := run(t, st, mimeMessage(attach{"a.pdf", "application/pdf", []byte("%PDF-")})); !slices.Contains(res.Tags, "signature:pdfhead") {
		t.Errorf("signature ending at the last byte: tags %q", res.Tags)
	}
	scan := newFileScan(st.(*Stage).cfg.sigs)
	scan.Write(append(make([]byte, 32<<10-2), 0xde, 0xad))
	scan.Write([]byte{0xbe, 0xef, 0})
	if !scan.matched["deadbeef"] {
		t.Error("signature across two writes not found")
	}
}

// TestLimitBounds: max_entries, max_entry_bytes and max_total_bytes are
// allowed exactly and refused one over; directories are not entries.
func TestLimitBounds(t *testing.T) {
	tarOf := func(dirs, files int) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for i := 0; i < dirs; i++ {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("d%d/", i), Mode: 0o755, Typeflag: tar.TypeDir})
		}
		for i := 0; i < files; i++ {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%d.txt", i), Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
			tw.Write([]byte("x"))
		}
		tw.Close()
		return b.Bytes()
	}
	stored := func(sizes ...int) []byte {
		var fs []zfile
		for i, n := range sizes {
			fs = append(fs, zfile{name: fmt.Sprintf("f%d.bin", i), data: make([]byte, n), store: true})
		}
		return makeZip(t, fs...)
	}
	for _, tc := range []struct {
		name  string
		lim   map[string]any
		data  []byte
		limit string
	}{
		{"10 entries of 10", map[string]any{"max_entries": 10}, tarOf(5, 10), ""},
		{"11 entries of 10", map[string]any{"max_entries": 10}, tarOf(0, 11), "entries"},
		{"entry at max_entry_bytes", map[string]any{"max_entry_bytes": 1000}, stored(1000), ""},
		{"entry one over", map[string]any{"max_entry_bytes": 1000}, stored(1001), "entry bytes"},
		{"total at max_total_bytes", map[string]any{"max_total_bytes": 2000}, stored(1000, 1000), ""},
		{"total one over", map[string]any{"max_total_bytes": 2000}, stored(1000, 1001), "total bytes"},
	} {
		st := newStage(t, map[string]any{"limits": tc.lim})
		if res := run(t, st, mimeMessage(attach{"a.bin", "application/octet-stream", tc.data})); res.Attrs["limit"] != tc.limit {
			t.Errorf("%s: limit %q (tags %q), want %q", tc.name, res.Attrs["limit"], res.Tags, tc.limit)
		}
	}
}

// TestCompressionRatios: one entry past 1 MiB with a ratio over max_ratio
// is a limit though the archive's ratio is low (other entries do not
// compress); and many small entries, none past 1 MiB, whose total is, are
// a limit by the archive's ratio.
func TestCompressionRatios(t *testing.T) {
	noise := make([]byte, 2<<20)
	rand.Read(noise)
	oneBomb := makeZip(t, zfile{name: "noise.bin", data: noise, store: true}, zfile{name: "zeros.bin", data: make([]byte, 1536<<10)})
	var small []zfile
	for i := 0; i < 20; i++ {
		small = append(small, zfile{name: fmt.Sprintf("z%d.bin", i), data: make([]byte, 100<<10)})
	}
	st := newStage(t, nil)
	for name, data := range map[string][]byte{"one entry": oneBomb, "many entries": makeZip(t, small...)} {
		if res := run(t, st, mimeMessage(attach{"a.zip", "application/zip", data})); res.Attrs["limit"] != "compression ratio" {
			t.Errorf("%s: limit %q (tags %q), want compression ratio", name, res.Attrs["limit"], res.Tags)
		}
	}
}

// TestNestedZipEntryCount: a ZIP inside a ZIP whose directory lists more
// than max_entries files is a limit ("nested declared size").
func TestNestedZipEntryCount(t *testing.T) {
	var fs []zfile
	for i := 0; i < 11; i++ {
		fs = append(fs, zfile{name: fmt.Sprintf("f%d.txt", i), data: []byte("x")})
	}
	outer := makeZip(t, zfile{name: "inner.zip", data: makeZip(t, fs...), store: true})
	res := run(t, newStage(t, map[string]any{"limits": map[string]any{"max_entries": 10}}), mimeMessage(attach{"a.zip", "application/zip", outer}))
	if res.Attrs["limit"] != "nested declared size" {
		t.Errorf("limit %q (tags %q), want nested declared size", res.Attrs["limit"], res.Tags)
	}
}

// TestGzipMagicByChance: a compressed single file whose stream does not
// decompress to its end is not called a corrupt archive: the magic may be
// chance.
func TestGzipMagicByChance(t *testing.T) {
	// A gzip header, a stored deflate block of text, then a block of the
	// reserved type 3: the stream reads, then fails (corrupt input).
	text := bytes.Repeat([]byte("plain text line\n"), 256)
	data := binary.LittleEndian.AppendUint16([]byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff, 0x00}, uint16(len(text)))
	data = binary.LittleEndian.AppendUint16(data, ^uint16(len(text)))
	data = append(append(data, text...), 0x07, 0, 0, 0, 0, 0, 0, 0, 0)
	if res := run(t, newStage(t, nil), mimeMessage(attach{"a.dat", "application/octet-stream", data})); len(res.Tags) != 0 {
		t.Errorf("tags %q, want none", res.Tags)
	}
}

// TestDictionaryFloor: a RAR window of 64 MiB is always allowed, whatever
// max_total_bytes.
func TestDictionaryFloor(t *testing.T) {
	if d := maxDict(Limits{MaxTotalBytes: 1 << 20}); d != 64<<20 {
		t.Errorf("maxDict = %d, want 64 MiB", d)
	}
}
