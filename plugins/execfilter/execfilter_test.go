package execfilter

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mholt/archives"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/mime"
	"github.com/portcullis-mta/portcullis/sdk/plugintest"
	"golang.org/x/text/encoding/japanese"
)

func newStage(t testing.TB, cfg map[string]any) sdk.Stage {
	t.Helper()
	st := New()
	if err := st.Configure(context.Background(), sdk.Env{}, cfg); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return st
}

func run(t testing.TB, st sdk.Stage, msg *sdk.Message) *sdk.Result {
	t.Helper()
	res, err := st.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: msg})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return res
}

func sjis(s string) string {
	out, _ := japanese.ShiftJIS.NewEncoder().String(s)
	return out
}

func TestAttachments(t *testing.T) {
	junkZip := append([]byte(strings.Repeat("junk before the archive\n", 40)), makeZip(t, zfile{name: "a.exe", data: peBytes()})...)
	inner := makeZip(t, zfile{name: "deep.exe", data: peBytes()})
	tests := []struct {
		name    string
		parts   []attach
		tags    []string
		verdict sdk.Verdict
		kinds   string
	}{
		{"exe as invoice.pdf", []attach{{"invoice.pdf", "application/pdf", peBytes()}}, []string{TagExecutable, TagMismatch}, sdk.VerdictFail, "pe"},
		{"exe honestly named", []attach{{"setup.exe", "application/octet-stream", peBytes()}}, []string{TagExecutable}, sdk.VerdictFail, "pe"},
		{"elf", []attach{{"photo.jpg", "image/jpeg", elfBytes()}}, []string{TagExecutable, TagMismatch}, sdk.VerdictFail, "elf"},
		{"macho", []attach{{"app", "application/octet-stream", machoBytes()}}, []string{TagExecutable}, sdk.VerdictFail, "macho"},
		{"lnk", []attach{{"doc.lnk", "application/octet-stream", lnkBytes()}}, []string{TagExecutable}, sdk.VerdictFail, "lnk"},
		{"msi as doc", []attach{{"report.doc", "application/msword", oleBytes(msiCLSID)}}, []string{TagExecutable, TagMismatch}, sdk.VerdictFail, "msi"},
		{"word document", []attach{{"report.doc", "application/msword", oleBytes(wordCLSID)}}, nil, sdk.VerdictPass, ""},
		{"vbs by name", []attach{{"run.vbs", "text/plain", []byte("WScript.Echo 1")}}, []string{TagExecutable}, sdk.VerdictFail, "script"},
		{"script by type", []attach{{"x.txt", "application/x-sh", []byte("echo hi")}}, []string{TagExecutable}, sdk.VerdictFail, "script"},
		{"pdf", []attach{{"a.pdf", "application/pdf", []byte("%PDF-1.7\n...")}}, nil, sdk.VerdictPass, ""},
		{"pe in zip", []attach{{"docs.zip", "application/zip", makeZip(t, zfile{name: "readme.txt", data: []byte("hi")}, zfile{name: "invoice.pdf", data: peBytes()})}},
			[]string{TagInArchive, TagMismatch}, sdk.VerdictFail, "pe"},
		{"zip named pdf", []attach{{"scan.pdf", "application/pdf", makeZip(t, zfile{name: "a.exe", data: peBytes()})}}, []string{TagInArchive}, sdk.VerdictFail, "pe"},
		{"zip in zip not opened", []attach{{"outer.zip", "application/zip", makeZip(t, zfile{name: "inner.zip", data: inner, store: true})}},
			[]string{TagNested}, sdk.VerdictNeutral, ""},
		{"encrypted zip", []attach{{"secret.zip", "application/zip", makeZip(t, zfile{name: "data.bin", data: []byte("ciphertext"), encrypted: true})}},
			[]string{TagEncrypted}, sdk.VerdictNeutral, ""},
		{"encrypted exe name", []attach{{"secret.zip", "application/zip", makeZip(t, zfile{name: "pay.exe", data: []byte("ciphertext"), encrypted: true})}},
			[]string{TagEncrypted, TagInArchive}, sdk.VerdictFail, "script"},
		{"junk before zip", []attach{{"sfx.bin", "application/octet-stream", junkZip}}, []string{TagInArchive}, sdk.VerdictFail, "pe"},
		{"shift_jis name in zip", []attach{{"a.zip", "application/zip", makeZip(t, zfile{name: sjis("請求書.js"), data: []byte("x=1"), nonUTF8: true})}},
			[]string{TagInArchive}, sdk.VerdictFail, "script"},
		{"elf in tar.gz", []attach{{"a.tgz", "application/gzip", tarGz(t, "bin/tool", elfBytes())}}, []string{TagInArchive}, sdk.VerdictFail, "elf"},
		{"pe in gzip", []attach{{"report.exe.gz", "application/gzip", gz(peBytes())}}, []string{TagInArchive}, sdk.VerdictFail, "pe"},
		{"zip in tar.gz", []attach{{"a.tgz", "application/gzip", tarGz(t, "x.zip", inner)}}, []string{TagNested}, sdk.VerdictNeutral, ""},
		{"corrupt zip", []attach{{"a.zip", "application/zip", []byte("PK\x03\x04 this is not a zip")}}, []string{TagCorrupt}, sdk.VerdictNeutral, ""},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(tc.parts...))
			want := slices.Clone(tc.tags)
			slices.Sort(want)
			if !slices.Equal(res.Tags, want) || res.Verdict != tc.verdict || res.Attrs["kinds"] != tc.kinds {
				t.Errorf("got tags %q verdict %s kinds %q; want %q %s %q", res.Tags, res.Verdict, res.Attrs["kinds"], want, tc.verdict, tc.kinds)
			}
		})
	}
}

func TestShiftJISNameDecoded(t *testing.T) {
	msg := mimeMessage(attach{"a.zip", "application/zip", makeZip(t, zfile{name: sjis("請求書.exe"), data: peBytes(), nonUTF8: true})})
	res := run(t, newStage(t, nil), msg)
	if res.Attrs["files"] != "請求書.exe" {
		t.Errorf("files %q, want the decoded name", res.Attrs["files"])
	}
}

// TestRawJapaneseFilenames: old Japanese mailers quote raw ISO-2022-JP or
// Shift_JIS names without escaping, and those bytes include '"' (JIS ア)
// and '\' (Shift_JIS ソ): the stage must still see the whole name.
func TestRawJapaneseFilenames(t *testing.T) {
	jis := func(s string) string {
		out, _ := japanese.ISO2022JP.NewEncoder().String(s)
		return out
	}
	tests := []struct {
		name, raw string
		data      []byte
		tags      []string
	}{
		{"アンケート.js", jis("アンケート.js"), []byte("WScript.Echo(1)"), []string{TagExecutable}},
		{"請求書.exe", jis("請求書.exe"), peBytes(), []string{TagExecutable}},
		{"ソフト.exe", sjis("ソフト.exe"), peBytes(), []string{TagExecutable}},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{tc.raw, "application/octet-stream", tc.data}))
			if !slices.Equal(res.Tags, tc.tags) || res.Attrs["files"] != tc.name {
				t.Errorf("tags %q files %q, want %q %q", res.Tags, res.Attrs["files"], tc.tags, tc.name)
			}
		})
	}
}

func TestBombs(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		tag   string
		limit string // "*": any limit
	}{
		{"42.zip bottom layer", bombZip(t, 16, 256<<20), TagLimit, "*"},
		{"42.zip upper layer", makeZip(t, zfile{name: "lib 0.zip", data: bombZip(t, 2, 16<<20)}, zfile{name: "lib 1.zip", data: bombZip(t, 2, 16<<20)}), TagNested, "nested compression ratio"},
		{"42.zip upper layer, stored", makeZip(t, zfile{name: "lib 0.zip", data: bombZip(t, 16, 64<<20), store: true}), TagLimit, "nested compression ratio"},
		{"overlapping entries", overlapZip(t, 500, 16<<20), TagLimit, "overlapping entries"},
		{"gzip bomb", append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}, append(zeroDeflate(256<<20), make([]byte, 8)...)...), TagLimit, "*"},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{"bomb.zip", "application/zip", tc.data}))
			limitOK := res.Attrs["limit"] == tc.limit || tc.limit == "*" && res.Attrs["limit"] != ""
			if !slices.Contains(res.Tags, tc.tag) || !limitOK {
				t.Errorf("tags %q limit %q; want %s, %q", res.Tags, res.Attrs["limit"], tc.tag, tc.limit)
			}
		})
	}
}

func TestLimitsConfigurable(t *testing.T) {
	many := []zfile{}
	for i := 0; i < 20; i++ {
		many = append(many, zfile{name: strings.Repeat("f", i+1) + ".txt", data: []byte("x")})
	}
	tests := []struct {
		name  string
		cfg   map[string]any
		data  []byte
		limit string
	}{
		{"entries", map[string]any{"limits": map[string]any{"max_entries": 10}}, makeZip(t, many...), "entries"},
		{"entry bytes", map[string]any{"limits": map[string]any{"max_entry_bytes": 1000}}, makeZip(t, zfile{name: "a.bin", data: make([]byte, 5000), store: true}), "entry bytes"},
		{"total bytes", map[string]any{"limits": map[string]any{"max_total_bytes": 3000}}, makeZip(t, zfile{name: "a", data: make([]byte, 2000), store: true}, zfile{name: "b", data: make([]byte, 2000), store: true}), "total bytes"},
		{"time", map[string]any{"limits": map[string]any{"timeout": "1ns"}}, makeZip(t, zfile{name: "a", data: []byte("x")}), "time"},
		{"within limits", map[string]any{"limits": map[string]any{"max_entries": 30}}, makeZip(t, many...), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, newStage(t, tc.cfg), mimeMessage(attach{"a.zip", "application/zip", tc.data}))
			if res.Attrs["limit"] != tc.limit {
				t.Errorf("limit %q (tags %q), want %q", res.Attrs["limit"], res.Tags, tc.limit)
			}
		})
	}
}

func TestSignatures(t *testing.T) {
	payload := append(make([]byte, 40000), []byte("\xde\xad\xbe\xef-marker")...) // crosses a 32 KiB chunk in archives
	cfg := map[string]any{"signatures": []any{
		map[string]any{"name": "deadbeef", "hex": "de ad be ef"},
		map[string]any{"name": "pdfhead", "hex": "255044462d", "offset": 0},
		map[string]any{"name": "late-pdf", "hex": "255044462d", "offset": 10},
	}}
	tests := []struct {
		name  string
		parts []attach
		want  []string
	}{
		{"anywhere in attachment", []attach{{"a.bin", "application/octet-stream", payload}}, []string{"signature:deadbeef"}},
		{"anywhere in zip entry", []attach{{"a.zip", "application/zip", makeZip(t, zfile{name: "x", data: payload})}}, []string{"signature:deadbeef"}},
		{"at offset", []attach{{"a.pdf", "application/pdf", []byte("%PDF-1.4")}}, []string{"signature:pdfhead"}},
		{"none", []attach{{"a.txt", "application/octet-stream", []byte("nothing here %PDF-")}}, nil},
	}
	st := newStage(t, cfg)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(tc.parts...))
			if !slices.Equal(res.Tags, tc.want) {
				t.Errorf("tags %q, want %q", res.Tags, tc.want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]map[string]any{
		"bad hex":     {"signatures": []any{map[string]any{"name": "a", "hex": "zz"}}},
		"no name":     {"signatures": []any{map[string]any{"hex": "00"}}},
		"neg offset":  {"signatures": []any{map[string]any{"name": "a", "hex": "00", "offset": -1}}},
		"unknown key": {"limitz": 1},
		"zero limit":  {"limits": map[string]any{"max_ratio": 0}},
	} {
		t.Run(name, func(t *testing.T) {
			if err := New().Configure(context.Background(), sdk.Env{}, cfg); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// TestExampleConfig: the example's exec stage catches a PE inside a ZIP.
func TestExampleConfig(t *testing.T) {
	st := newStage(t, plugintest.StageConfig(t, "../../examples/rules/content.yaml", "execfilter"))
	res := run(t, st, mimeMessage(attach{"a.zip", "application/zip", makeZip(t, zfile{name: "invoice.pdf.exe", data: peBytes()})}))
	if res.Verdict != sdk.VerdictFail || !slices.Contains(res.Tags, TagInArchive) {
		t.Errorf("result %+v", res)
	}
	rtf := []byte("{\\rtf1{\\object\\objemb ...}}")
	res = run(t, st, mimeMessage(attach{"a.doc", "application/msword", rtf}))
	if !slices.Contains(res.Tags, "signature:rtf_ole_exploit") {
		t.Errorf("signature not matched: %+v", res)
	}
}

func TestTruncatedAttachment(t *testing.T) {
	st := &Stage{}
	cfg, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	st.cfg = cfg
	raw := mimeMessage(attach{"big.bin", "application/octet-stream", make([]byte, 5000)}).Bytes()
	m, err := mime.Parse(bytes.NewReader(raw), mime.Limits{MaxPartBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res := st.inspect(context.Background(), m); res.Attrs["limit"] != "attachment bytes" {
		t.Errorf("result %+v, want the attachment-bytes limit", res)
	}
}

// TestSevenZip: 7-Zip archives are opened (a signature in an entry is
// found, also in one packed with PPMd) and an encrypted one is tagged,
// through the archives package.
func TestSevenZip(t *testing.T) {
	st := newStage(t, map[string]any{"signatures": []any{map[string]any{"name": "foo", "hex": "666f6f0a"}}})
	tests := []struct {
		file string
		want []string
	}{
		{"t0.7z", []string{"signature:foo"}},
		{"ppmd.7z", []string{"signature:foo"}},
		{"aes7z.7z", []string{TagEncrypted}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "sevenzip", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			res := run(t, st, mimeMessage(attach{"a.bin", "application/octet-stream", data}))
			if !slices.Equal(res.Tags, tc.want) {
				t.Errorf("tags %q, want %q", res.Tags, tc.want)
			}
		})
	}
}

// TestUUEncodedInText: a PE uuencoded into a plain text body (no MIME) is
// still found, through sdk/mime's uuencode parts.
func TestUUEncodedInText(t *testing.T) {
	var uu strings.Builder
	uu.WriteString("begin 755 readme.txt\r\n")
	pe := peBytes()
	for i := 0; i < len(pe); i += 45 {
		chunk := pe[i:min(i+45, len(pe))]
		uu.WriteByte(byte(32 + len(chunk)))
		for j := 0; j < len(chunk); j += 3 {
			var g [3]byte
			copy(g[:], chunk[j:])
			for _, c := range []byte{g[0] >> 2, (g[0]<<4 | g[1]>>4) & 63, (g[1]<<2 | g[2]>>6) & 63, g[2] & 63} {
				if c == 0 {
					c = 64
				}
				uu.WriteByte(32 + c)
			}
		}
		uu.WriteString("\r\n")
	}
	uu.WriteString("`\r\nend\r\n")
	raw := "From: a@example.test\r\nSubject: old mailer\r\n\r\nsee below\r\n" + uu.String()
	res := run(t, newStage(t, nil), sdk.NewBytesMessage(nil, []byte(raw)))
	if !slices.Contains(res.Tags, TagExecutable) || !slices.Contains(res.Tags, TagMismatch) || res.Attrs["files"] != "readme.txt" {
		t.Errorf("result %+v", res)
	}
}

// TestMIMELimits: parts the MIME walker gave up on count as uninspected.
func TestMIMELimits(t *testing.T) {
	var b strings.Builder
	b.WriteString("Subject: many\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n")
	for i := 0; i < 600; i++ {
		b.WriteString("--q\r\nContent-Type: text/plain\r\n\r\nx\r\n")
	}
	b.WriteString("--q--\r\n")
	res := run(t, newStage(t, nil), sdk.NewBytesMessage(nil, []byte(b.String())))
	if !slices.Contains(res.Tags, TagLimit) || res.Attrs["limit"] != mime.FindPartsLimit || res.Verdict != sdk.VerdictFail {
		t.Errorf("result %+v", res)
	}
}

// OneNote notebooks and Internet shortcuts are in the default list: both
// carried malware widely (embedded files that run at a click; remote
// executables opened from a .url).
func TestDefaultListCarriers(t *testing.T) {
	st := newStage(t, nil)
	for _, name := range []string{"議事録.one", "invoice.url", "a.zip"} {
		data := []byte("[InternetShortcut]\r\nURL=file://198.51.100.7/share/x.exe\r\n")
		want := []string{TagExecutable}
		if name == "a.zip" {
			data = makeZip(t, zfile{name: "notes.one", data: []byte{0xe4, 0x52, 0x5c, 0x7b}})
			want = []string{TagInArchive}
		}
		t.Run(name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{name, "application/octet-stream", data}))
			if !slices.Equal(res.Tags, want) || res.Verdict != sdk.VerdictFail {
				t.Errorf("%s: tags %q verdict %s, want %q fail", name, res.Tags, res.Verdict, want)
			}
		})
	}
}

// compress wraps data whole with one of the archives package's
// compressors, as gzip, bzip2 or xz would on the command line.
func compress(t testing.TB, c archives.Compressor, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := c.OpenWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCompressedZip: a ZIP compressed whole (a.zip.gz, .bz2, .xz) is a
// compressed single file, an archive of one entry: the ZIP inside, tagged
// nested, its directory read for a 42.zip layer. The archives package
// cannot extract a ZIP through a decompressor (a ZIP is read from its end),
// and such mail was tagged archive.corrupt, bomb included, and passed.
func TestCompressedZip(t *testing.T) {
	inner := makeZip(t, zfile{name: "doc.pdf", data: peBytes()})
	bomb := bombZip(t, 16, 64<<20)
	st := newStage(t, nil)
	for _, tc := range []struct {
		name  string
		c     archives.Compressor
		data  []byte
		tag   string
		limit string
	}{
		{"a.zip.gz", archives.Gz{}, inner, TagNested, ""},
		{"a.zip.bz2", archives.Bz2{}, inner, TagNested, ""},
		{"a.zip.xz", archives.Xz{}, inner, TagNested, ""},
		// A bomb's deflate output compresses well again: the gzip layer's
		// own ratio or the ZIP's declared sizes, whichever comes first.
		{"bomb.zip.gz", archives.Gz{}, bomb, TagLimit, "*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{tc.name, "application/octet-stream", compress(t, tc.c, tc.data)}))
			limitOK := res.Attrs["limit"] == tc.limit || tc.limit == "*" && res.Attrs["limit"] != ""
			if !slices.Contains(res.Tags, tc.tag) || slices.Contains(res.Tags, TagCorrupt) || !limitOK {
				t.Errorf("tags %q limit %q; want %s and not %s, limit %q", res.Tags, res.Attrs["limit"], tc.tag, TagCorrupt, tc.limit)
			}
		})
	}
}

// TestCheckStopsWhenContextEnds: a call whose context ended (the gateway
// gave up on it) returns the context's error, without walking the
// message first: the walk came before the first look at the context.
func TestCheckStopsWhenContextEnds(t *testing.T) {
	st := newStage(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	msg := mimeMessage(attach{"setup.exe", "application/octet-stream", peBytes()})
	if _, err := st.Check(ctx, &sdk.Request{Phase: sdk.PhaseData, Message: msg}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Check: %v, want the context's error", err)
	}
}
