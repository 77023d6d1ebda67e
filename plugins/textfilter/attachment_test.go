package textfilter

import (
	"bytes"
	"context"
	"encoding/base64"
	"runtime"
	"slices"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/mime"
)

// TestAttachmentNotDecoded: the stage matches text only, so the walk
// leaves attachments undecoded (mime.Limits.TextOnly): a 17 MiB binary
// file in base64 cost about 40 MB decoded and dropped. The findings the
// stage tags come out as before: the file is over the walker's 16 MiB a
// part, which says text may have gone unread.
func TestAttachmentNotDecoded(t *testing.T) {
	bin := bytes.Repeat([]byte{0x4d, 0x5a, 0x90, 0x00}, 17<<20/4)
	raw := []byte("Subject: invoice\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\ncheap viagra\r\n" +
		"--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=a.bin\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString(bin) + "\r\n--B--\r\n")
	st := NewText()
	configure(t, st, "", map[string]any{"lists": []any{map[string]any{"name": "spam", "patterns": []any{"viagra"}}}})
	msg := sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: "invoice"}}, raw) // read without a copy

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res := check(t, st, msg)
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 2<<20 {
		t.Errorf("Check allocated %d bytes: the attachment was decoded", n)
	}
	want := []string{"spam:viagra", mime.FindPartTruncated}
	if res.Verdict != sdk.VerdictFail || !slices.Equal(res.Tags, want) {
		t.Errorf("result %s %q, want fail with %q", res.Verdict, res.Tags, want)
	}
	if !mimeLimits.TextOnly {
		t.Error("the stage's walk keeps bodies")
	}
	m, err := mime.ParseMessage(context.Background(), msg, mimeLimits)
	if err != nil || len(m.Parts) != 2 || m.Parts[1].Body != nil || !m.Parts[1].Truncated {
		t.Errorf("the stage's walk: %v, %d parts, want the attachment's Body left out and cut", err, len(m.Parts))
	}
}
