package smtpd

import (
	"reflect"
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
