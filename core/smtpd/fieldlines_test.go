package smtpd

import (
	"bufio"
	"bytes"
	"mime"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/core/pipeline"
	"github.com/portcullis-mta/portcullis/sdk"
	sdkmime "github.com/portcullis-mta/portcullis/sdk/mime"
)

// Fields a stage adds are header text: non-ASCII values in RFC 2047
// encoded words, long ones folded at spaces; unfolded and decoded, they
// read as the stage wrote them.
func TestFieldLines(t *testing.T) {
	long := strings.Repeat("word ", 60) + "end"
	for _, v := range []string{"yes", "こんにちは、世界", long, strings.Repeat("迷惑メール判定 ", 20)} {
		got := fieldLines("X-Test", v)
		lines := strings.Split(strings.TrimSuffix(got, "\r\n"), "\r\n")
		for i, l := range lines {
			if words := strings.Fields(strings.TrimPrefix(l, "X-Test:")); len(l) > 78 && len(words) > 1 {
				t.Errorf("%q: line %d has %d characters", v, i, len(l))
			}
			if i > 0 && !strings.HasPrefix(l, " ") {
				t.Errorf("%q: continuation %q does not start with white space", v, l)
			}
			if !isASCII(l) {
				t.Errorf("%q: raw 8-bit in %q", v, l)
			}
		}
		unfolded := strings.TrimPrefix(strings.ReplaceAll(strings.TrimSuffix(got, "\r\n"), "\r\n", ""), "X-Test: ")
		dec, err := new(mime.WordDecoder).DecodeHeader(unfolded)
		if err != nil || dec != v {
			t.Errorf("%q came back as %q (%v) from %q", v, dec, err, got)
		}
	}
}

// A subject prefix that is not ASCII goes in as an encoded word.
func TestSubjectPrefixEncoded(t *testing.T) {
	var out bytes.Buffer
	msg := "Subject: =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=\r\nFrom: a@example.test\r\n\r\nbody\r\n"
	dec := &pipeline.Decision{SubjectPrefix: "[迷惑]"}
	if err := rewriteHeader(&out, bufio.NewReader(strings.NewReader(msg)), planHeader(dec)); err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(out.String(), "\r\n")
	if !isASCII(first) {
		t.Fatalf("raw 8-bit subject: %q", first)
	}
	// The space after the prefix survives decoding (RFC 2047 6.2 drops the
	// one between two encoded words).
	if got := sdkmime.DecodeHeader(strings.TrimPrefix(first, "Subject: ")); got != "[迷惑] テスト" {
		t.Errorf("subject reads %q", got)
	}
	for _, tc := range []struct{ prefix, subject, want string }{
		{"[迷惑]", "plain text", "[迷惑] plain text"},
		{"[SPAM]", "=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=", "[SPAM] テスト"},
	} {
		out.Reset()
		msg := "Subject: " + tc.subject + "\r\n\r\nbody\r\n"
		if err := rewriteHeader(&out, bufio.NewReader(strings.NewReader(msg)), planHeader(&pipeline.Decision{SubjectPrefix: tc.prefix})); err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(out.String(), "\r\n")
		if got := sdkmime.DecodeHeader(strings.TrimPrefix(first, "Subject: ")); got != tc.want {
			t.Errorf("%s + %s reads %q, want %q", tc.prefix, tc.subject, got, tc.want)
		}
	}
}

// A field longer than the reader's buffer comes in several slices: the
// rest of a long line is not a field of its own (a removed field goes
// whole, a subject is prefixed once, and a slice that looks like
// "Name: value" is not taken for a field).
func TestRewriteHeaderLongLines(t *testing.T) {
	long := strings.Repeat("a", 5000)
	trap := strings.Repeat("b", 4096-len("X-Long: ")) + "Subject: not a field"
	msg := "X-Drop: " + long + "\r\nSubject: " + long + "\r\nX-Long: " + trap + "\r\nFrom: a@example.test\r\n\r\n" +
		long + "\r\nend\r\n"
	dec := &pipeline.Decision{SubjectPrefix: "[SPAM]",
		Headers: []sdk.HeaderEdit{{Op: sdk.HeaderRemove, Name: "X-Drop"}}}
	var out bytes.Buffer
	if err := rewriteHeader(&out, bufio.NewReader(strings.NewReader(msg)), planHeader(dec)); err != nil {
		t.Fatal(err)
	}
	want := "Subject: [SPAM] " + long + "\r\nX-Long: " + trap + "\r\nFrom: a@example.test\r\n\r\n" + long + "\r\nend\r\n"
	if got := out.String(); got != want {
		t.Errorf("got %d bytes %.120q..., want %d bytes %.120q...", len(got), got, len(want), want)
	}
}
