package antivirus

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

// message100KB is the same shape as in the textfilter and execfilter
// benchmarks: a text body and a ZIP attachment, about 100 KB.
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
	return []byte("From: a@example.test\r\nSubject: report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body +
		"--B\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename=report.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(z.Bytes()) + "\r\n--B--\r\n")
}

// BenchmarkStage100KB scans a 100 KB message with the real clamd (over the
// unix socket and TCP), against mime.Parse of the same message in the same run.
func BenchmarkStage100KB(b *testing.B) {
	sock, tcp, _ := startClamd(b)
	raw := message100KB(b)
	msg := sdk.NewBytesMessage(nil, raw)
	for name, addr := range map[string]string{"clamd-unix": sock, "clamd-tcp": "tcp:" + tcp} {
		b.Run(name, func(b *testing.B) {
			st := New()
			if err := st.Configure(context.Background(), sdk.Env{}, map[string]any{"clamd": addr}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				res, err := st.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseData, Message: msg})
				if err != nil || res.Verdict != sdk.VerdictPass {
					b.Fatalf("%+v %v", res, err)
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
