package textfilter

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
	"github.com/portcullis-mta/portcullis/sdk/mime"
)

// message100KB is about 100 KB: a Japanese and English text body and a
// ZIP attachment (the same shape as the execfilter and antivirus benchmarks).
func message100KB(b testing.TB) []byte {
	body := strings.Repeat("Please find the quarterly report attached. 四半期報告書を添付します。\r\n", 400)
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	w, _ := zw.Create("report.pdf")
	r := make([]byte, 40<<10)
	for i := range r {
		r[i] = byte(i * 7919 >> 3)
	}
	w.Write(append([]byte("%PDF-1.7\n"), r...))
	w, _ = zw.Create("notes.txt")
	w.Write([]byte(body))
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	return []byte("From: a@example.test\r\nSubject: =?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte("四半期報告")) + "?=\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body +
		"--B\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename=report.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(z.Bytes()) + "\r\n--B--\r\n")
}

// BenchmarkStage100KB is each stage on a 100 KB message, with 10,000
// literal patterns, against mime.Parse of the same message in the same run.
func BenchmarkStage100KB(b *testing.B) {
	raw := message100KB(b)
	msg := sdk.NewBytesMessage([]sdk.HeaderField{{Name: "Subject", Value: "=?UTF-8?B?5Zub5Y2K5pyf5aCx5ZGK?="}}, raw)
	pats := make([]any, 0, 10000)
	for _, p := range benchPatterns(10000) {
		pats = append(pats, p)
	}
	cfg := map[string]any{"lists": []any{map[string]any{"name": "big", "patterns": pats}}}
	for _, c := range []struct {
		name string
		st   sdk.Stage
	}{{"textfilter", NewText()}, {"subject", NewSubject()}} {
		b.Run(c.name, func(b *testing.B) {
			if err := c.st.Configure(context.Background(), sdk.Env{}, cfg); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := c.st.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: msg}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("baseline-mime.Parse", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			mime.Parse(bytes.NewReader(raw), mime.DefaultLimits())
		}
	})
}
