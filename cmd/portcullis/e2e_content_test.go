package main

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"mime"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/encoding/japanese"
)

// The content stages of examples/rules/content.yaml (subject, textfilter,
// execfilter, antivirus) run here through `portcullis run` against a real
// clamd started by ../shared/clamd/start-clamd.sh, with an in-process next
// hop (startNextHop) capturing what is relayed. Fixtures are built in code:
// executables and the EICAR string are never committed.

// contentExampleClamd is the clamd line of the example; the test replaces
// only its value, so the example's own stages and rules are what run.
const contentExampleClamd = "clamd: /var/run/clamav/clamd.ctl"

// contentRules returns examples/rules/content.yaml with the antivirus
// stage pointed at sock.
func contentRules(t *testing.T, sock string) string {
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

func contentClamdScript(t *testing.T, name string) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "..", "shared", "clamd", name)
}

// startContentClamd starts clamd (start-clamd.sh installs it when missing
// and fails loudly otherwise) and stops it when the test ends.
func startContentClamd(t *testing.T) *contentClamd {
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
func (c *contentClamd) start(t *testing.T) {
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

func (c *contentClamd) stop(t *testing.T) {
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

func contentZip(t *testing.T, name string, data []byte) []byte {
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

// contentJIS encodes s as ISO-2022-JP (RFC 1468).
func contentJIS(t *testing.T, s string) string {
	t.Helper()
	b, err := japanese.ISO2022JP.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// contentJISWord is s as one RFC 2047 encoded-word in ISO-2022-JP, built by
// hand because mime.BEncoding would split the JIS bytes as if UTF-8.
func contentJISWord(t *testing.T, s string) string {
	return "=?ISO-2022-JP?B?" + base64.StdEncoding.EncodeToString([]byte(contentJIS(t, s))) + "?="
}

// contentDecodeSubject decodes RFC 2047 words in a Subject relayed by the
// gateway, with the Japanese charsets of x/text.
func contentDecodeSubject(t *testing.T, v string) string {
	t.Helper()
	dec := mime.WordDecoder{CharsetReader: func(cs string, r io.Reader) (io.Reader, error) {
		if strings.EqualFold(cs, "iso-2022-jp") {
			return japanese.ISO2022JP.NewDecoder().Reader(r), nil
		}
		return nil, fmt.Errorf("charset %s", cs)
	}}
	s, err := dec.DecodeHeader(v)
	if err != nil {
		t.Fatalf("decoding subject %q: %v", v, err)
	}
	return s
}

// contentMsg is a message with a unique Message-ID id, a raw Subject and
// either a text body or, with attName set, a base64 attachment.
func contentMsg(id, subject, body, attName string, att []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: a@example.org\r\nTo: b@example.test\r\nSubject: %s\r\nMessage-ID: <%s@client.example.org>\r\nMIME-Version: 1.0\r\n", subject, id)
	if attName == "" {
		fmt.Fprintf(&b, "Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n%s\r\n", body)
		return b.String()
	}
	b.WriteString("Content-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\n--=_b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	b.WriteString(body + "\r\n--=_b\r\nContent-Type: application/octet-stream\r\n")
	fmt.Fprintf(&b, "Content-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", attName)
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

// TestE2EContent runs `portcullis run` with examples/rules/content.yaml
// (only its clamd socket changed) against a real clamd: executables are
// refused, viruses and spam text are held in the quarantine, clean and
// Japanese mail is relayed, a Japanese subject pattern tags an ISO-2022-JP
// subject, and clamd down means 451 with nothing kept until it is back.
func TestE2EContent(t *testing.T) {
	clamd := startContentClamd(t)
	hop := startNextHop(t, false)
	cfg, _ := e2eSetup(t, hop, map[string]string{"rules-content.yaml": contentRules(t, clamd.sock)})
	g := startGateway(t, cfg)
	var held []string // queue IDs the quarantine must hold

	t.Run("executables rejected", func(t *testing.T) {
		contentExecutables(t, g.addr)
	})
	t.Run("viruses quarantined", func(t *testing.T) {
		held = append(held, contentViruses(t, g.addr, cfg)...)
	})
	t.Run("clean and Japanese mail delivered", func(t *testing.T) {
		contentClean(t, g.addr, hop)
	})
	t.Run("Japanese subject pattern tags", func(t *testing.T) {
		contentSubjectTag(t, g.addr, hop)
	})
	t.Run("Japanese text quarantined", func(t *testing.T) {
		held = append(held, contentSpamText(t, g.addr, cfg))
	})
	t.Run("clamd down is 451 and nothing kept", func(t *testing.T) {
		contentClamdDown(t, g.addr, hop, clamd)
	})

	// Everything accepted and not held has been relayed; nothing refused
	// or tempfailed was ever spooled or relayed.
	for _, id := range []string{"pe-pdf", "pe-zip", "eicar-plain", "eicar-zip", "eicar-att", "spam-text"} {
		if contentByID(hop.received(), id) != nil {
			t.Errorf("message %s reached the next hop", id)
		}
	}
	if out := portcullisCLI(t, "queue", "list", "-c", cfg); !strings.Contains(out, "-- 0 messages") {
		t.Errorf("the delivery queue is not empty at the end:\n%s", out)
	}
	out := portcullisCLI(t, "quarantine", "list", "-c", cfg)
	if want := fmt.Sprintf("-- %d messages held", len(held)); !strings.Contains(out, want) {
		t.Errorf("quarantine list, want %q:\n%s", want, out)
	}
	if t.Failed() {
		t.Logf("gateway log:\n%s", g.logs())
	}
}

// contentExecutables: a PE named invoice.pdf and a PE inside a ZIP get the
// example's 554 at the end of DATA.
func contentExecutables(t *testing.T, addr string) {
	const want = "554 5.7.1 Executable attachments are not accepted"
	for _, tc := range []struct{ id, name string }{
		{"pe-pdf", "invoice.pdf"},
		{"pe-zip", "invoice.zip"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			att := contentPE()
			if strings.HasSuffix(tc.name, ".zip") {
				att = contentZip(t, "invoice.exe", att)
			}
			r := sendOne(addr, "b@example.test", contentMsg(tc.id, "invoice", "see attached", tc.name, att))
			if r.String() != want {
				t.Fatalf("reply %v, want %s", r, want)
			}
		})
	}
}

// contentViruses: EICAR as the text, in a ZIP and as a base64 attachment is
// accepted (250) and held with the rule's reason and clamd's finding.
func contentViruses(t *testing.T, addr, cfg string) (ids []string) {
	for _, tc := range []struct {
		id, body, attName string
		att               []byte
	}{
		{id: "eicar-plain", body: string(contentEICAR())},
		{id: "eicar-zip", body: "see attached", attName: "report.zip", att: contentZip(t, "report.txt", contentEICAR())},
		{id: "eicar-att", body: "see attached", attName: "readme.txt", att: contentEICAR()},
	} {
		t.Run(tc.id, func(t *testing.T) {
			r := sendOne(addr, "b@example.test", contentMsg(tc.id, "files", tc.body, tc.attName, tc.att))
			id := r.queueID()
			if id == "" {
				t.Fatalf("reply %v, want 250 with a queue ID", r)
			}
			ids = append(ids, id)
			list := portcullisCLI(t, "quarantine", "list", "-c", cfg)
			entry, _, _ := strings.Cut(list[strings.Index(list, id)+1:], "\n    to:")
			if !strings.Contains(list, id) || !strings.Contains(entry, "reason: rule virus") {
				t.Fatalf("quarantine list does not hold %s with reason rule virus:\n%s", id, list)
			}
			show := portcullisCLI(t, "quarantine", "show", id, "-c", cfg)
			if !strings.Contains(show, "Custom.Test.EICAR-NDB.UNOFFICIAL") {
				t.Errorf("quarantine show %s lacks clamd's signature name:\n%s", id, show)
			}
		})
	}
	return ids
}

// contentClean: plain ASCII mail and ISO-2022-JP mail reach the next hop
// unchanged and untagged.
func contentClean(t *testing.T, addr string, hop *nextHop) {
	for _, tc := range []struct{ id, subject, body string }{
		{"clean-ascii", "quarterly report", "Please find the figures below."},
		{"clean-jis", contentJISWord(t, "会議のお知らせ"), contentJIS(t, "明日の会議は十時からです。よろしくお願いします。")},
	} {
		t.Run(tc.id, func(t *testing.T) {
			if r := sendOne(addr, "b@example.test", contentMsg(tc.id, tc.subject, tc.body, "", nil)); r.queueID() == "" {
				t.Fatalf("reply %v, want 250 with a queue ID", r)
			}
			m := contentByID(hop.waitFor(t, tc.id, contentHas(tc.id)), tc.id)
			if got := m.header("Subject"); got != tc.subject {
				t.Errorf("Subject relayed as %q, want %q", got, tc.subject)
			}
			if !strings.Contains(m.data, "\r\n\r\n"+tc.body+"\r\n") {
				t.Errorf("body not relayed byte for byte:\n%q", m.data)
			}
			if tag := m.header("X-Portcullis-Tag"); tag != "" {
				t.Errorf("clean message tagged %q", tag)
			}
		})
	}
}

// contentSubjectTag: the example's subject list ("未承諾広告", "viagra" in
// UTF-8) matches ISO-2022-JP subjects, also in full-width letters, and its
// tag rule's subject_prefix "[SPAM] " is put before the encoded subject
// (one space between them, not the prefix's own plus another).
func contentSubjectTag(t *testing.T, addr string, hop *nextHop) {
	for _, tc := range []struct{ id, subject string }{
		{"subj-jis", "未承諾広告※春のセール"},
		{"subj-fullwidth", "ｖｉａｇｒａ　格安"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			if r := sendOne(addr, "b@example.test", contentMsg(tc.id, contentJISWord(t, tc.subject), contentJIS(t, "本文です。"), "", nil)); r.queueID() == "" {
				t.Fatalf("reply %v, want 250 with a queue ID", r)
			}
			m := contentByID(hop.waitFor(t, tc.id, contentHas(tc.id)), tc.id)
			if got, want := contentDecodeSubject(t, m.header("Subject")), "[SPAM] "+tc.subject; got != want {
				t.Errorf("subject relayed as %q (raw %q), want %q", got, m.header("Subject"), want)
			}
		})
	}
}

// contentSpamText: three of the example's Japanese spam words in an
// ISO-2022-JP body reach the textfilter threshold; the message is held.
func contentSpamText(t *testing.T, addr, cfg string) string {
	body := contentJIS(t, "出会い系サイトに無料登録すれば今すぐ儲かる！")
	r := sendOne(addr, "b@example.test", contentMsg("spam-text", contentJISWord(t, "ご案内"), body, "", nil))
	id := r.queueID()
	if id == "" {
		t.Fatalf("reply %v, want 250 with a queue ID", r)
	}
	if list := portcullisCLI(t, "quarantine", "list", "-c", cfg); !strings.Contains(list, id) || !strings.Contains(list, "reason: rule spam_text") {
		t.Fatalf("quarantine list does not hold %s by rule spam_text:\n%s", id, list)
	}
	return id
}

// contentClamdDown: with clamd stopped the av stage's on_error tempfail
// gives 451 at the end of DATA and nothing is spooled; once clamd is back
// the sender's retry of the same message is accepted and relayed once.
func contentClamdDown(t *testing.T, addr string, hop *nextHop, clamd *contentClamd) {
	msg := contentMsg("retry", "retry me", "a clean message sent while clamd is down", "", nil)
	clamd.stop(t)
	r := sendOne(addr, "b@example.test", msg)
	clamd.start(t)
	if r.code != 451 || !strings.HasPrefix(r.text, "4.") {
		t.Fatalf("reply with clamd down %v, want 451 4.x.x", r)
	}
	if contentByID(hop.received(), "retry") != nil {
		t.Fatal("the tempfailed message reached the next hop")
	}
	if r := sendOne(addr, "b@example.test", msg); r.queueID() == "" {
		t.Fatalf("retry after clamd came back: %v, want 250 with a queue ID", r)
	}
	hop.waitFor(t, "the retried message", contentHas("retry"))
	n := 0
	for _, m := range hop.received() {
		if contentByID([]hopMsg{m}, "retry") != nil {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the retried message was relayed %d times, want once", n)
	}
}
