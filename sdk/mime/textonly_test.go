package mime

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// textOnlyCases are messages with every kind of part a Body is kept for,
// and every finding decoding one can give.
var textOnlyCases = map[string]string{
	"base64 binary": "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--B\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--B--\r\n",
	"base64 invalid":   "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBO*Rw0KGgo!AAA\r\nA\r\n",
	"base64 text":      "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n44GT44KT44Gr44Gh44Gv\r\n",
	"qp attachment":    "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nMZ=90=00=zz=\r\nend=\r\n",
	"qp soft breaks":   "Content-Type: application/x-data\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nab=\ncd=\r\nef=4\r\n=",
	"x-uuencode":       "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a.exe\r\n#86)C\r\n`\r\nend\r\n",
	"uuencode in text": "Subject: uu\r\n\r\nfiles:\r\nbegin 644 b.bin\r\n#86)C\r\n`\r\nend\r\n",
	"unknown encoding": "Content-Type: application/zip\r\nContent-Transfer-Encoding: x-gzip64\r\n\r\nPK\x03\x04\r\n",
	"text attachment": "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain; name=notes.txt\r\n" +
		"Content-Disposition: attachment; filename=notes.txt\r\n\r\nsome notes\r\n--B\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--B--\r\n",
	"nested message": "Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=C\r\n\r\n--C\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--C\r\nContent-Type: text/plain\r\n\r\nafter it\r\n--C--\r\n",
}

// TestTextOnlySameWalk: with TextOnly, no part keeps a Body, and the walk
// is otherwise the one without it: the same parts, texts, truncation and
// findings, limits included, for textfilter's tags rely on them.
func TestTextOnlySameWalk(t *testing.T) {
	msgs := map[string][]byte{}
	for name, m := range textOnlyCases {
		msgs[name] = []byte(m)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msgs[filepath.Base(f)] = raw
	}
	limits := map[string]Limits{
		"default": {},
		// cuts parts, then the total, so binary parts decide what text is left
		"small": {MaxPartBytes: 5, MaxTotalBytes: 180},
	}
	bodies := 0
	for name, raw := range msgs {
		for lname, lim := range limits {
			t.Run(name+"/"+lname, func(t *testing.T) {
				full := ParseBytes(raw, lim)
				lim.TextOnly = true
				text := ParseBytes(raw, lim)
				for _, p := range text.Parts {
					if p.Body != nil {
						t.Errorf("part %s keeps a Body of %d bytes", p.Path, len(p.Body))
					}
				}
				for _, p := range full.Parts {
					if p.Body != nil {
						bodies++
					}
					p.Body = nil
				}
				if !reflect.DeepEqual(full, text) {
					t.Errorf("walks differ:\n without: %s\n    with: %s", dump(full), dump(text))
				}
			})
		}
	}
	if bodies < 10 {
		t.Errorf("only %d parts had a Body to leave out", bodies)
	}
}

func dump(m *Message) string {
	s := ""
	for _, p := range m.Parts {
		s += p.Path + " " + p.ContentType + " " + p.Filename + " " + p.Text + " " + map[bool]string{true: "cut", false: ""}[p.Truncated] + "; "
	}
	return s + "findings " + strings.Join(m.Findings, " ")
}

// TestTextOnlyDecodesNoAttachment: an attachment is measured, not
// decoded, with TextOnly: a 15 MiB binary file in base64 cost 35 MB
// decoded, for a stage that only reads text.
func TestTextOnlyDecodesNoAttachment(t *testing.T) {
	bin := bytes.Repeat([]byte{0x4d, 0x5a, 0x90, 0x00}, 15<<20/4)
	raw := []byte("Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee the file\r\n" +
		"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(bin) + "\r\n--B--\r\n")
	var m *Message
	if n := allocated(func() { m = ParseBytes(raw, Limits{}) }); n < 30<<20 {
		t.Fatalf("the walk with bodies allocated %d bytes, the test needs more", n)
	}
	if len(m.Parts) != 2 || len(m.Parts[1].Body) != len(bin) {
		t.Fatalf("without TextOnly: %d parts, want 2 and the file's %d bytes", len(m.Parts), len(bin))
	}
	n := allocated(func() { m = ParseBytes(raw, Limits{TextOnly: true}) })
	if n > 1<<20 {
		t.Errorf("the walk with TextOnly allocated %d bytes", n)
	}
	if len(m.Parts) != 2 || m.Parts[0].Text != "see the file" || m.Parts[1].Body != nil {
		t.Errorf("with TextOnly: %s", dump(m))
	}
}

// FuzzDecodedLen: the lengths and findings TextOnly measures are those
// decoding gives.
func FuzzDecodedLen(f *testing.F) {
	for _, s := range []string{"", "QUJD", "QUJDRA==", "QU\r\nJD!", "QUJDR", "a=3Db=\r\nc", "=4", "=", "=zz=\n", "x\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, bad := decodeBase64(in)
		if n, nbad := base64Len(in); n != len(out) || nbad != bad {
			t.Errorf("base64Len(%q) = %d, %v; decodeBase64 gives %d, %v", in, n, nbad, len(out), bad)
		}
		out, bad = decodeQP(in)
		if n, nbad := qpLen(in); n != len(out) || nbad != bad {
			t.Errorf("qpLen(%q) = %d, %v; decodeQP gives %d, %v", in, n, nbad, len(out), bad)
		}
	})
}
