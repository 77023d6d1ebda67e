package mime

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata messages and golden files")

// summary is what the golden files record of a walk.
type summary struct {
	Subject  string
	Findings []string
	Parts    []partSummary
}

type partSummary struct {
	Path, ContentType, Charset, DetectedCharset, Filename, Disposition string
	AltFilename                                                        string `json:",omitempty"`
	Text                                                               string `json:",omitempty"`
	BodyLen                                                            int
}

func summarise(m *Message) summary {
	s := summary{Subject: m.Subject, Findings: m.Findings}
	for _, p := range m.Parts {
		s.Parts = append(s.Parts, partSummary{p.Path, p.ContentType, p.Charset, p.DetectedCharset,
			p.Filename, p.Disposition, p.AltFilename, p.Text, len(p.Body)})
	}
	return s
}

func parseFile(t *testing.T, name string) *Message {
	t.Helper()
	path := filepath.Join("testdata", name+".eml")
	if *update {
		if err := os.WriteFile(path, []byte(goldenBuilders[name]()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(bytes.NewReader(raw), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGolden(t *testing.T) {
	for name := range goldenBuilders {
		t.Run(name, func(t *testing.T) {
			got, _ := json.MarshalIndent(summarise(parseFile(t, name)), "", "  ")
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(bytes.TrimSpace(want)) != string(got) {
				t.Errorf("walk differs from %s:\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

// TestDecoding states the facts the golden files hold, so a bad -update
// cannot bless a regression.
func TestDecoding(t *testing.T) {
	tests := []struct {
		file, subject, text, detected, finding string
	}{
		{"iso2022jp_subject", "【未承諾広告】激安セール", "よろしくお願いします", "", ""},
		{"sjis_base64", "sjis", "出会い系サイトの無料登録", "", ""},
		{"eucjp_qp", "euc", "今すぐ儲かる投資の話", "", ""},
		{"sjis_mislabelled", "請求書送付のお知らせ", "お支払いはこちら", "shift_jis", FindMislabelled},
		{"fullwidth", "ＳＰＡＭ ｶﾀｶﾅ", "ＦＲＥＥ　ＭＯＮＥＹ", "", ""},
		{"malformed", "bad", "qapla", "utf-8", FindCharsetUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			m := parseFile(t, tc.file)
			if m.Subject != tc.subject {
				t.Errorf("subject %q, want %q", m.Subject, tc.subject)
			}
			if len(m.Parts) == 0 || !strings.Contains(m.Parts[0].Text, tc.text) {
				t.Fatalf("first part text does not contain %q: %+v", tc.text, m.Parts)
			}
			if m.Parts[0].DetectedCharset != tc.detected {
				t.Errorf("detected %q, want %q", m.Parts[0].DetectedCharset, tc.detected)
			}
			if tc.finding != "" && !slices.Contains(m.Findings, tc.finding) {
				t.Errorf("findings %v lack %s", m.Findings, tc.finding)
			}
			if tc.finding == "" && len(m.Findings) != 0 {
				t.Errorf("unexpected findings %v", m.Findings)
			}
		})
	}
}

func TestMultipartAttachments(t *testing.T) {
	m := parseFile(t, "multipart_attach")
	want := []struct{ path, ctype, filename, text string }{
		{"1.1", "text/plain", "", "plain text"},
		{"1.2", "text/html", "", "Hello&"},
		{"2", "application/pdf", "請求書.pdf", ""},
		{"3", "application/octet-stream", "見積書.zip", ""},
	}
	if len(m.Parts) != len(want) {
		t.Fatalf("got %d parts, want %d", len(m.Parts), len(want))
	}
	for i, w := range want {
		p := m.Parts[i]
		if p.Path != w.path || p.ContentType != w.ctype || p.Filename != w.filename || !strings.Contains(p.Text, w.text) {
			t.Errorf("part %d = {%s %s %q %q}, want %+v", i, p.Path, p.ContentType, p.Filename, p.Text, w)
		}
	}
	if !strings.Contains(m.Parts[1].Text, "http://x.test/") || strings.Contains(m.Parts[1].Text, "p{}") {
		t.Errorf("html text %q: want the link kept and the style dropped", m.Parts[1].Text)
	}
	if string(m.Parts[2].Body) != "%PDF-1.4 test" {
		t.Errorf("pdf body %q", m.Parts[2].Body)
	}
}

func TestMalformedFindings(t *testing.T) {
	m := parseFile(t, "malformed")
	for _, f := range []string{FindHeaderMalformed, FindCharsetUnknown, FindBase64Invalid, FindQPInvalid, FindBoundaryBroken} {
		if !slices.Contains(m.Findings, f) {
			t.Errorf("findings %v lack %s", m.Findings, f)
		}
	}
	if len(m.Parts) != 3 || string(m.Parts[1].Body) != "ABCD" {
		t.Errorf("parts %+v: want 3, the second decoding to ABCD", m.Parts)
	}
}
