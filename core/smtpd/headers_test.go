package smtpd

import (
	"reflect"
	"strings"
	"testing"

	"golang.org/x/text/encoding/japanese"

	"github.com/portcullis-mta/portcullis/sdk/plugintest"
)

// TestHeaderFieldsDecodeRawJapanese: old Japanese mailers write Shift_JIS
// or EUC-JP bytes into headers unencoded. Stages and rules get the text in
// UTF-8 (the plugin protocol can carry nothing else), not the raw bytes.
func TestHeaderFieldsDecodeRawJapanese(t *testing.T) {
	sjis, _ := japanese.ShiftJIS.NewEncoder().String("請求書のお知らせ")
	euc, _ := japanese.EUCJP.NewEncoder().String("口座確認のお願い")
	raw := "From: a@example.org\r\nSubject: " + sjis + "\r\nX-Mailer: " + euc + "\r\nX-Ascii: plain\r\n\r\nbody\r\n"
	got := map[string]string{}
	for _, f := range HeaderFields([]byte(raw)) {
		got[f.Name] = f.Value
	}
	for k, want := range map[string]string{"Subject": "請求書のお知らせ", "X-Mailer": "口座確認のお願い", "X-Ascii": "plain"} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
	// A stage's tests see the same (sdk/plugintest shares the decoding).
	if pt := plugintest.ParseHeader([]byte(raw)); !reflect.DeepEqual(pt, HeaderFields([]byte(raw))) {
		t.Errorf("plugintest.ParseHeader gives %q, the gateway %q", pt, HeaderFields([]byte(raw)))
	}
}

// TestHeaderCaptureChunked: the header captured is the same however the
// message arrives: whole, a byte at a time (the blank line split across
// writes), or in random pieces; the search for the blank line looks only at
// the new bytes and the three before them.
func TestHeaderCaptureChunked(t *testing.T) {
	for _, msg := range []string{
		"Subject: a\r\nFrom: b@example.test\r\n\r\nbody\r\n\r\nmore\r\n",
		"\r\nno header\r\n",
		"Subject: no body\r\n",
		"X: " + strings.Repeat("y", maxHeaderCapture) + "\r\n\r\nbody",
	} {
		var whole headerCapture
		whole.Write([]byte(msg))
		for _, step := range []int{1, 2, 3, 5, 4096} {
			var h headerCapture
			for i := 0; i < len(msg); i += step {
				h.Write([]byte(msg[i:min(i+step, len(msg))]))
			}
			if h.buf.String() != whole.buf.String() || h.done != whole.done {
				t.Errorf("%.20q in pieces of %d: captured %d bytes (done %v), whole %d (done %v)",
					msg, step, h.buf.Len(), h.done, whole.buf.Len(), whole.done)
			}
		}
	}
}

// BenchmarkHeaderCaptureTrickle: a 256 KiB header written 8 bytes at a
// time, as a client trickling it can make the socket deliver it. Searching
// the whole buffer at every write made this quadratic (30 s here); it is
// linear now.
func BenchmarkHeaderCaptureTrickle(b *testing.B) {
	msg := []byte(strings.Repeat("X-Filler: "+strings.Repeat("f", 60)+"\r\n", maxHeaderCapture/72) + "\r\nbody\r\n")
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		var h headerCapture
		for i := 0; i < len(msg); i += 8 {
			h.Write(msg[i:min(i+8, len(msg))])
		}
	}
}
