package plugintest

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// ReportMessage is a realistic message of about 100 KB for stage
// benchmarks: an RFC 2047 Japanese subject, a Japanese and English text
// body, and a base64 ZIP holding a PDF-like file and the text again. The
// built-in stages' benchmarks share it, so their figures compare.
func ReportMessage(t testing.TB) []byte {
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
		t.Fatal(err)
	}
	return []byte("From: a@example.test\r\nSubject: =?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte("四半期報告")) + "?=\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body +
		"--B\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename=report.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(z.Bytes()) + "\r\n--B--\r\n")
}
