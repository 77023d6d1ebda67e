package delivery

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-message"

	"github.com/portcullis-mta/portcullis/core/config"
	"github.com/portcullis-mta/portcullis/core/queue"
)

// leafTexts returns what a reader sees of msg: each leaf part's media type
// and body with its transfer encoding undone, message/rfc822 parts opened.
func leafTexts(t *testing.T, msg []byte) []string {
	t.Helper()
	out, err := readLeafTexts(msg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readLeafTexts is leafTexts' walk, with an error where msg does not parse.
func readLeafTexts(msg []byte) ([]string, error) {
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, fmt.Errorf("message does not parse: %v", err)
	}
	var out []string
	var walk func(e *message.Entity, digest bool) error
	walk = func(e *message.Entity, digest bool) error {
		if mr := e.MultipartReader(); mr != nil {
			typ, _, _ := e.Header.ContentType()
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					return nil
				}
				if err != nil && !message.IsUnknownCharset(err) {
					return fmt.Errorf("part: %v", err)
				}
				if err := walk(p, typ == "multipart/digest"); err != nil {
					return err
				}
			}
		}
		typ, _, _ := e.Header.ContentType()
		if digest && !e.Header.Has("Content-Type") {
			typ = "message/rfc822" // RFC 2046 5.1.5
		}
		body, err := io.ReadAll(e.Body)
		if err != nil {
			return fmt.Errorf("body: %v", err)
		}
		if typ == "message/rfc822" {
			inner, err := readLeafTexts(body)
			if err != nil {
				return err
			}
			out = append(append(out, "message/rfc822:"), inner...)
			return nil
		}
		out = append(out, typ+": "+string(body))
		return nil
	}
	return out, walk(e, false)
}

// downgrade8bit is the conversion as openFor streams it, read whole: msg
// with its 8-bit body parts in quoted-printable, and whether anything
// changed.
func downgrade8bit(msg []byte) ([]byte, bool) {
	changed := false
	r := startDowngrade(msg, func() { changed = true })
	defer r.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		panic(err) // not reached: the conversion writes only to the pipe
	}
	return out, changed
}

// bodyOf returns msg after its header.
func bodyOf(msg []byte) []byte { return msg[headerLen(msg):] }

func TestDowngrade8bit(t *testing.T) {
	const b64 = "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQF/w==\r\n"
	tests := []struct {
		name    string
		msg     string
		changed bool
		want    []string // substrings of the result
		same    []string // parts that must come through byte for byte
	}{
		{name: "UTF-8 text, no MIME header",
			msg:     "From: a@x.test\r\nSubject: s\r\n\r\ncaf\xc3\xa9 =ok\r\n.line starting with a dot\r\n",
			changed: true, want: []string{"Content-Transfer-Encoding: quoted-printable\r\nMIME-Version: 1.0\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\n\r\n", "caf=C3=A9 =3Dok\r\n", "\r\n.line starting"}},
		{name: "Latin-1 text, no MIME header",
			msg:     "From: a@x.test\r\nSubject: s\r\n\r\ncaf\xe9\r\n",
			changed: true, want: []string{"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=unknown-8bit\r\n\r\ncaf=E9\r\n"}},
		{name: "Shift_JIS text replacing 8bit",
			msg: "From: a@x.test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=Shift_JIS\r\n" +
				"Content-Transfer-Encoding: 8bit\r\n\r\n\x82\xb1\x82\xf1\x82\xc9\x82\xbf\x82\xcd\r\n",
			changed: true, want: []string{"Content-Transfer-Encoding: quoted-printable\r\n", "=82=B1=82=F1"}},
		{name: "multipart: text converted, base64 and 8-bit preamble",
			msg: "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npre\xe9amble\r\n" +
				"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xe3\x81\x82\r\n" +
				"--b1\r\n" + b64 + "--b1--\r\nepilogue\r\n",
			changed: true, want: []string{"=E3=81=82\r\n--b1\r\n", "pre?amble"}, same: []string{b64 + "--b1--\r\nepilogue\r\n"}},
		{name: "nested message/rfc822 in a multipart",
			msg: "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: message/rfc822\r\n\r\n" +
				"Subject: inner\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nna\xefve\r\n--o--\r\n",
			changed: true, want: []string{"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: text/plain; charset=iso-8859-1\r\n" +
				"Content-Transfer-Encoding: quoted-printable\r\n\r\nna=EFve\r\n--o--"}},
		{name: "the field is replaced where it stands: trace fields stay first",
			msg: "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: a@x.test\r\nContent-Transfer-Encoding: 8bit\r\n" +
				"Subject: s\r\n\r\ncaf\xc3\xa9\r\n",
			changed: true, want: []string{"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: a@x.test\r\n" +
				"Content-Transfer-Encoding: quoted-printable\r\nSubject: s\r\nMIME-Version: 1.0\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\n\r\ncaf=C3=A9\r\n"}},
		{name: "ASCII message untouched",
			msg: "Subject: x\r\n\r\nplain\r\n", changed: false},
		{name: "8-bit header only: untouched",
			msg: "Subject: caf\xc3\xa9\r\n\r\nplain\r\n", changed: false},
		{name: "stray 8-bit in a quoted-printable part is left",
			msg: "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf\xc3\xa9\r\n", changed: false},
		{name: "message/partial is left (must be 7bit)",
			msg: "Content-Type: message/partial; id=x; number=1\r\n\r\n\xff\r\n", changed: false},
		{name: "multipart without a boundary is left",
			msg: "Content-Type: multipart/mixed\r\n\r\n\xff\r\n", changed: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changed := downgrade8bit([]byte(tt.msg))
			if changed != tt.changed {
				t.Fatalf("changed = %v, want %v:\n%q", changed, tt.changed, out)
			}
			if !changed {
				if string(out) != tt.msg {
					t.Fatalf("unchanged message altered:\n%q", out)
				}
				return
			}
			if !isASCII(string(bodyOf(out))) {
				t.Errorf("body still has 8-bit bytes:\n%q", out)
			}
			for _, w := range append(tt.want, tt.same...) {
				if !strings.Contains(string(out), w) {
					t.Errorf("result lacks %q:\n%q", w, out)
				}
			}
			// A reader sees the same text, byte for byte.
			before, after := leafTexts(t, []byte(tt.msg)), leafTexts(t, out)
			if strings.Join(before, "\x00") != strings.Join(after, "\x00") {
				t.Errorf("decoded parts differ:\nbefore %q\nafter  %q", before, after)
			}
			if again, ch := downgrade8bit(out); ch || !bytes.Equal(again, out) {
				t.Errorf("a second pass changed it again:\n%q", again)
			}
		})
	}
}

// FuzzDowngrade: the conversion never panics, changes nothing a second
// time, adds no bare CR or LF to a CRLF message, and leaves a message a
// reader can parse with the same decoded text.
func FuzzDowngrade(f *testing.F) {
	f.Add([]byte("Subject: s\r\n\r\ncaf\xc3\xa9\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n\xff\r\n--b\r\n\r\n\xe9\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/alternative; boundary=\"q\"\r\n\r\n--q\r\nContent-Type: text/html\r\n\r\n<p>\xe3\x81\x82\r\n--q--\r\n"))
	f.Add([]byte("Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: x\r\n\r\n\x82\xa0\r\n--d--"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		out, changed := downgrade8bit(msg)
		if !changed {
			if !bytes.Equal(out, msg) {
				t.Fatalf("unchanged but altered")
			}
			return
		}
		if again, ch := downgrade8bit(out); ch || !bytes.Equal(again, out) {
			t.Fatalf("second pass changed it:\n%q\n%q", out, again)
		}
		if cleanCRLF(msg) && !cleanCRLF(out) {
			t.Fatalf("bare CR or LF introduced:\n%q\n%q", msg, out)
		}
		// A reader that can read a message as the queue holds it (CRLF
		// lines) sees the same text after, but for the end of a last
		// line without one: a quoted-printable line ends in CRLF (RFC
		// 2045 6.7).
		if !cleanCRLF(msg) {
			return
		}
		if before, err := readLeafTexts(msg); err == nil {
			after, err := readLeafTexts(out)
			if err != nil || !slices.EqualFunc(before, after, func(b, a string) bool {
				return strings.TrimSuffix(b, "\r\n") == strings.TrimSuffix(a, "\r\n")
			}) {
				t.Fatalf("decoded parts differ (%v):\nbefore %q\nafter  %q", err, before, after)
			}
		}
	})
}

// cleanCRLF: every CR and LF of b is part of a CRLF.
func cleanCRLF(b []byte) bool {
	return bytes.Count(b, []byte("\r")) == bytes.Count(b, []byte("\r\n")) &&
		bytes.Count(b, []byte("\n")) == bytes.Count(b, []byte("\r\n"))
}

// headerSigner stands in for DKIM: it adds a header naming a digest of the
// bytes it was given, so the test can tell what it signed.
type headerSigner struct{}

func (headerSigner) Sign(_ *queue.Envelope, msg io.Reader) (io.Reader, error) {
	b, err := io.ReadAll(msg)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return io.MultiReader(strings.NewReader(fmt.Sprintf("X-Signed: %x\r\n", sum)), bytes.NewReader(b)), nil
}

// RFC 6152 3: an 8-bit message reaches a next hop without 8BITMIME with
// its 8-bit parts in quoted-printable, converted before signing; a next
// hop with 8BITMIME gets it byte for byte with BODY=8BITMIME.
func TestDowngradeForPeerWithout8BITMIME(t *testing.T) {
	const ehlo = "250-script.test\r\n250 ENHANCEDSTATUSCODES\r\n"
	old := newScriptPeer(t, func(line string) string { return basicReplies(ehlo, line) })
	home := newPeer(t)
	cfg := baseConfig(t)
	cfg.Routes = []config.Route{mkRoute([]string{"local.test"}, home.addr), mkRoute([]string{"*"}, old.addr)}
	w := newWorld(t, cfg)
	w.sign = headerSigner{}
	msg := "From: u@local.test\r\nSubject: test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xe3\x81\x93\xe3\x82\x93\r\n.dot\r\n" +
		"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
	eight := func(e *queue.Envelope) { e.BodyType = "8BITMIME" }
	w.enqueue("u@local.test", []string{"x@far.test"}, localSender, msg, eight)
	w.enqueue("u@local.test", []string{"me@local.test"}, localSender, msg, eight)
	w.enqueue("u@local.test", []string{"y@far.test"}, localSender, "Subject: ascii\r\n\r\nplain\r\n", eight)
	w.start()
	w.waitFor("three deliveries", func() bool { return len(old.messages()) == 2 && len(home.messages()) == 1 && w.queueEmpty() })

	want, _ := downgrade8bit([]byte(msg))
	sum := sha256.Sum256(want)
	got := old.messages()
	if got[0] == got[1] {
		t.Fatal("same message twice")
	}
	conv := got[0]
	if strings.Contains(got[1], "=E3=81=93") {
		conv = got[1]
	}
	if unstuffed := strings.ReplaceAll(conv, "\r\n..", "\r\n."); unstuffed != fmt.Sprintf("X-Signed: %x\r\n", sum)+string(want) {
		t.Fatalf("old next hop got:\n%q\nwant the conversion, signed after it:\n%q", unstuffed, want)
	}
	if !isASCII(conv) || !strings.Contains(conv, "JVBERi0=\r\n--b--") {
		t.Fatalf("not 7-bit, or the base64 part changed:\n%q", conv)
	}
	for _, c := range old.commands() {
		if strings.HasPrefix(c, "MAIL") && strings.Contains(c, "BODY=") {
			t.Errorf("%q to a server that does not offer 8BITMIME", c)
		}
	}
	if d := home.messages()[0].data; !strings.HasSuffix(d, msg) || !strings.Contains(d, "X-Signed: ") {
		t.Fatalf("8BITMIME next hop got:\n%q", d)
	}
	if !strings.Contains(w.logs.String(), "8-bit body converted to quoted-printable") {
		t.Error("the conversion was not logged")
	}
}
