package dkimsign

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// FuzzSign: the header of a message our users sent is read to find From.
// Whatever the bytes, Sign either fails or returns the message unchanged
// below any signature fields it adds, but for the empty line (and the end
// of line before it) a signed header alone is sent with.
func FuzzSign(f *testing.F) {
	for _, s := range []string{testMsg, "From: a@example.test\r\n\r\n", "From: a@example.test\r\n",
		"From: =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?= <a@sub.example.test>\r\n\r\nx\r\n",
		"From: a@example.test\r\nFrom: b@example.test\r\n\r\n", "\r\n\r\n", "From:\r\n a@example.test\r\n\r\n\r\n"} {
		f.Add([]byte(s))
	}
	_, ek := testKeys(f)
	s := New([]*Key{{Domain: "example.test", Selector: "e", Signer: ek}})
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := s.Sign(trusted, bytes.NewReader(msg))
		if err != nil {
			return
		}
		out, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		sent := msg
		lines := append([]byte("\n"), msg...)
		headerAlone := !bytes.Contains(lines, []byte("\n\n")) && !bytes.Contains(lines, []byte("\n\r\n"))
		if headerAlone && !bytes.HasSuffix(out, msg) {
			if sent = append(bytes.Clone(msg), "\r\n"...); !bytes.HasSuffix(msg, []byte("\n")) {
				sent = append(sent, "\r\n"...)
			}
		}
		if !bytes.HasSuffix(out, sent) {
			t.Fatalf("message changed: %q -> %q", msg, out)
		}
		if added := string(out[:len(out)-len(sent)]); added != "" && !strings.HasPrefix(added, "DKIM-Signature:") {
			t.Fatalf("added %q", added)
		}
	})
}
