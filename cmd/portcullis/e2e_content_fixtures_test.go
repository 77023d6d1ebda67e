package main

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"mime"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"
)

// contentExampleClamd is the clamd line of the example; the test replaces
// only its value, so the example's own stages and rules are what run.
const contentExampleClamd = "clamd: /var/run/clamav/clamd.ctl"

// contentRules returns examples/rules/content.yaml with the antivirus
// stage pointed at sock.
func contentRules(t testing.TB, sock string) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/rules/content.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), contentExampleClamd); n != 1 {
		t.Fatalf("examples/rules/content.yaml has %d lines %q, want 1: update this test", n, contentExampleClamd)
	}
	return strings.Replace(string(b), contentExampleClamd, "clamd: "+sock, 1)
}

// contentClamd is a private clamd from Debian's clamav-daemon.
type contentClamd struct {
	state, sock string
}

func contentClamdScript(t testing.TB, name string) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "..", "shared", "clamd", name)
}

// startContentClamd starts clamd (start-clamd.sh installs it when missing
// and fails loudly otherwise) and stops it when the test ends.
func startContentClamd(t testing.TB) *contentClamd {
	t.Helper()
	state, err := os.MkdirTemp("", "pc-clamd") // short: a unix socket path is < 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	c := &contentClamd{state: state}
	c.start(t)
	t.Cleanup(func() {
		c.stop(t)
		os.RemoveAll(state)
	})
	return c
}

// start runs start-clamd.sh on the state directory; again after stop it
// brings clamd back on the same socket.
func (c *contentClamd) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command("bash", contentClamdScript(t, "start-clamd.sh"), "-d", c.state)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("start-clamd.sh: %v\n%s%s", err, out, stderr.String())
	}
	sock := strings.TrimSpace(string(out))
	if c.sock != "" && sock != c.sock {
		t.Fatalf("clamd came back on %s, not %s", sock, c.sock)
	}
	c.sock = sock
}

func (c *contentClamd) stop(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("bash", contentClamdScript(t, "stop-clamd.sh"), c.state).CombinedOutput(); err != nil {
		t.Errorf("stop-clamd.sh: %v\n%s", err, out)
	}
}

// contentEICAR is the EICAR test string, assembled so that it appears
// nowhere verbatim in the repository.
func contentEICAR() []byte {
	parts := []string{`X5O!P%@AP[4\PZX54(P^)7CC)7}$`, "EICAR-STANDARD-", "ANTIVIRUS-TEST-", "FILE!$H+H*"}
	return []byte(strings.Join(parts, ""))
}

// contentPE is the smallest byte pattern execfilter must call a Windows
// executable: an MZ header whose e_lfanew points at "PE\0\0".
func contentPE() []byte {
	b := make([]byte, 1024)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x80)
	copy(b[0x80:], "PE\x00\x00")
	return b
}

func contentZip(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// contentEncryptedZip is a ZIP whose one entry has the encryption flag set
// (the bytes stand in for ciphertext): the "PPAP" archives of Japanese
// business mail, which no scanner can look into.
func contentEncryptedZip(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: name, Method: zip.Store, Flags: 0x1, CRC32: crc32.ChecksumIEEE(data),
		CompressedSize64: uint64(len(data)), UncompressedSize64: uint64(len(data))}
	w, err := zw.CreateRaw(h)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// contentRFC2231 is name as an RFC 2231 extended parameter value in
// charset, every byte percent-encoded.
func contentRFC2231(t *testing.T, charset, name string) string {
	var b strings.Builder
	b.WriteString(charset + "''")
	for _, c := range []byte(contentEncode(t, charset, name)) {
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// contentCharsets are the Japanese charsets of mail, by MIME name.
var contentCharsets = map[string]encoding.Encoding{
	"iso-2022-jp": japanese.ISO2022JP,
	"shift_jis":   japanese.ShiftJIS,
	"euc-jp":      japanese.EUCJP,
}

// contentEncode encodes s in charset (a contentCharsets name).
func contentEncode(t testing.TB, charset, s string) string {
	t.Helper()
	b, err := contentCharsets[strings.ToLower(charset)].NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// contentWord is s as one RFC 2047 B encoded-word in charset, built by hand
// because mime.BEncoding would split the encoded bytes as if UTF-8.
func contentWord(t testing.TB, charset, s string) string {
	return "=?" + charset + "?B?" + base64.StdEncoding.EncodeToString([]byte(contentEncode(t, charset, s))) + "?="
}

// contentDecodeSubject decodes the RFC 2047 words of a relayed Subject.
func contentDecodeSubject(t *testing.T, v string) string {
	t.Helper()
	dec := mime.WordDecoder{CharsetReader: func(cs string, r io.Reader) (io.Reader, error) {
		if e, ok := contentCharsets[strings.ToLower(cs)]; ok {
			return e.NewDecoder().Reader(r), nil
		}
		return nil, fmt.Errorf("charset %s", cs)
	}}
	s, err := dec.DecodeHeader(v)
	if err != nil {
		t.Fatalf("decoding subject %q: %v", v, err)
	}
	return s
}

// contentText is a text/plain part as it goes on the wire.
type contentText struct{ charset, cte, wire string }

func contentASCII(s string) contentText { return contentText{"us-ascii", "7bit", s} }

// contentJapanese is s encoded in charset: ISO-2022-JP as 7bit (RFC 1468),
// Shift_JIS as base64, EUC-JP as raw 8bit, the three forms Japanese mail
// arrives in.
func contentJapanese(t testing.TB, charset, s string) contentText {
	enc := contentEncode(t, charset, s)
	switch strings.ToLower(charset) {
	case "iso-2022-jp":
		return contentText{charset, "7bit", enc}
	case "shift_jis":
		return contentText{charset, "base64", base64.StdEncoding.EncodeToString([]byte(enc))}
	}
	return contentText{charset, "8bit", enc}
}

// contentMsg is a message with a unique Message-ID id, a raw Subject, a
// text part and, with attName set, a base64 attachment after it (attName
// with a charset'language' part is an RFC 2231 extended value, as contentRFC2231 makes).
func contentMsg(id, subject string, text contentText, attName string, att []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: a@example.org\r\nTo: b@example.test\r\nSubject: %s\r\nMessage-ID: <%s@client.example.org>\r\nMIME-Version: 1.0\r\n", subject, id)
	textHead := fmt.Sprintf("Content-Type: text/plain; charset=%s\r\nContent-Transfer-Encoding: %s\r\n\r\n", text.charset, text.cte)
	if attName == "" {
		b.WriteString(textHead + text.wire + "\r\n")
		return b.String()
	}
	b.WriteString("Content-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\n--=_b\r\n" + textHead)
	b.WriteString(text.wire + "\r\n--=_b\r\nContent-Type: application/octet-stream\r\n")
	param := `filename="` + attName + `"`
	if strings.Contains(attName, "''") { // RFC 2231: charset'language'%XX
		param = "filename*=" + attName
	}
	fmt.Fprintf(&b, "Content-Disposition: attachment; %s\r\nContent-Transfer-Encoding: base64\r\n\r\n", param)
	enc := base64.StdEncoding.EncodeToString(att)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--=_b--\r\n")
	return b.String()
}

// contentByID finds the relayed message whose Message-ID holds id.
func contentByID(msgs []hopMsg, id string) *hopMsg {
	for i := range msgs {
		if strings.Contains(msgs[i].header("Message-ID"), "<"+id+"@") {
			return &msgs[i]
		}
	}
	return nil
}

func contentHas(id string) func([]hopMsg) bool {
	return func(msgs []hopMsg) bool { return contentByID(msgs, id) != nil }
}
