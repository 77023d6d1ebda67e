package mime

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// afterCtx is a context that is cancelled from its n+1st Err on: the walk
// sees it end at a part of the test's choosing, with no clock involved.
type afterCtx struct {
	context.Context
	n int
}

func (c *afterCtx) Err() error {
	if c.n <= 0 {
		return context.Canceled
	}
	c.n--
	return nil
}

// attachments is a multipart message of n base64 attachments of size
// bytes each.
func attachments(n, size int) []byte {
	var b strings.Builder
	b.WriteString("Subject: files\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, size))
	for range n {
		b.WriteString("--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		for s := enc; len(s) > 0; s = s[min(76, len(s)):] {
			b.WriteString(s[:min(76, len(s))] + "\r\n")
		}
	}
	b.WriteString("--B--\r\n")
	return []byte(b.String())
}

// TestParseStopsWhenContextEnds: a walk whose context ends stops before
// the next part and returns the context's error. Stages pass Check's
// context: a walk the gateway had given up on (stage timeout 300ms) went
// on for 1.7 s of the plugin's only CPU.
func TestParseStopsWhenContextEnds(t *testing.T) {
	raw := attachments(20, 1<<20)
	msg := sdk.NewBytesMessage(nil, raw) // read without a copy: only the walk allocates
	if all := allocated(func() { ParseBytes(raw, Limits{}) }); all < 20<<20 {
		t.Fatalf("the whole walk allocated %d bytes, the test needs more", all)
	}
	var err error
	// The multipart and its first part pass; the context ends at the second.
	n := allocated(func() { _, err = ParseMessage(&afterCtx{context.Background(), 2}, msg, Limits{}) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ParseMessage: %v, want the context's error", err)
	}
	if n > 4<<20 {
		t.Errorf("the walk went on after its context ended: %d bytes allocated, one part takes about 2.4 MB", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ParseContext(ctx, bytes.NewReader(raw), Limits{}); !errors.Is(err, context.Canceled) {
		t.Errorf("ParseContext with its context done: %v, want the context's error", err)
	}
	if m, err := ParseContext(context.Background(), bytes.NewReader(raw), Limits{}); err != nil || len(m.Parts) != 20 {
		t.Errorf("ParseContext: %v, %d parts, want 20", err, len(m.Parts))
	}
}

// TestParseStopsBetweenUUFiles: files uuencoded in a text part are parts
// too, and the walk stops between them.
func TestParseStopsBetweenUUFiles(t *testing.T) {
	var b strings.Builder
	b.WriteString("Subject: uu\r\n\r\nfiles:\r\n")
	for range 3 {
		b.WriteString("begin 644 a.bin\r\n#86)C\r\n`\r\nend\r\n")
	}
	raw := []byte(b.String())
	if m := ParseBytes(raw, Limits{}); len(m.Parts) != 4 {
		t.Fatalf("%d parts, want the text and 3 files", len(m.Parts))
	}
	// The text part passes; the context ends before the files.
	if _, err := ParseMessage(&afterCtx{context.Background(), 1}, sdk.NewBytesMessage(nil, raw), Limits{}); !errors.Is(err, context.Canceled) {
		t.Errorf("ParseMessage: %v, want the context's error", err)
	}
}
