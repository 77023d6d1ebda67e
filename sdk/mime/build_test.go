package mime

import (
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"
)

// Builders of the golden messages in testdata. `go test -update` writes
// them; the committed .eml files are what the tests read.

func enc(e encoding.Encoding, s string) string {
	out, err := e.NewEncoder().String(s)
	if err != nil {
		panic(err)
	}
	return out
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func qp(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || c == '=' {
			fmt.Fprintf(&b, "=%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

var goldenBuilders = map[string]func() string{
	"iso2022jp_subject": func() string {
		subj := enc(japanese.ISO2022JP, "【未承諾広告】激安セール")
		return crlf("From: a@example.test\nSubject: =?ISO-2022-JP?B?" + b64(subj) + "?=\n" +
			"MIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit\n\n" +
			enc(japanese.ISO2022JP, "本文です。よろしくお願いします。") + "\n")
	},
	"sjis_base64": func() string {
		return crlf("From: a@example.test\nSubject: sjis\nMIME-Version: 1.0\n" +
			"Content-Type: text/plain; charset=Shift_JIS\nContent-Transfer-Encoding: base64\n\n" +
			b64(enc(japanese.ShiftJIS, "出会い系サイトの無料登録はこちら。ｶﾀｶﾅ")) + "\n")
	},
	"eucjp_qp": func() string {
		return crlf("From: a@example.test\nSubject: euc\nMIME-Version: 1.0\n" +
			"Content-Type: text/plain; charset=EUC-JP\nContent-Transfer-Encoding: quoted-printable\n\n" +
			qp(enc(japanese.EUCJP, "今すぐ儲かる投資の話")) + "\n")
	},
	"sjis_mislabelled": func() string {
		return crlf("From: a@example.test\nSubject: =?ISO-2022-JP?B?" + b64(enc(japanese.ShiftJIS, "請求書送付のお知らせ")) + "?=\n" +
			"MIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 8bit\n\n" +
			enc(japanese.ShiftJIS, "お支払いはこちらのリンクから。") + "\n")
	},
	"fullwidth": func() string {
		return crlf("From: a@example.test\nSubject: =?UTF-8?B?" + b64("ＳＰＡＭ ｶﾀｶﾅ") + "?=\n" +
			"MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n\nＦＲＥＥ　ＭＯＮＥＹ and ｶﾀｶﾅ\n")
	},
	"multipart_attach": func() string {
		name := enc(japanese.ShiftJIS, "請求書.pdf")
		var pct strings.Builder
		for i := 0; i < len(name); i++ {
			fmt.Fprintf(&pct, "%%%02X", name[i])
		}
		return crlf("From: a@example.test\nSubject: invoice\nMIME-Version: 1.0\n" +
			"Content-Type: multipart/mixed; boundary=\"XX\"\n\npreamble\n--XX\n" +
			"Content-Type: multipart/alternative; boundary=YY\n\n--YY\nContent-Type: text/plain; charset=utf-8\n\nplain text\n" +
			"--YY\nContent-Type: text/html; charset=utf-8\n\n<html><style>p{}</style><p>Hello&amp;<a href=\"http://x.test/\">click</a></p></html>\n--YY--\n" +
			"--XX\nContent-Type: application/pdf\nContent-Disposition: attachment; filename*=shift_jis''" + pct.String() + "\n" +
			"Content-Transfer-Encoding: base64\n\n" + b64("%PDF-1.4 test") + "\n" +
			"--XX\nContent-Type: application/octet-stream; name=\"=?ISO-2022-JP?B?" + b64(enc(japanese.ISO2022JP, "見積書.zip")) + "?=\"\n" +
			"Content-Disposition: attachment\nContent-Transfer-Encoding: base64\n\n" + b64("PK\x03\x04") + "\n--XX--\nepilogue\n")
	},
	"malformed": func() string {
		return crlf("From: a@example.test\nSubject: bad\nthis is not a header\nMIME-Version: 1.0\n" +
			"Content-Type: multipart/mixed; boundary=ZZ\n\n--ZZ\nContent-Type: text/plain; charset=x-klingon\n\nqapla\n" +
			"--ZZ\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nQUJD*RA==!!\n" +
			"--ZZ\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nbroken =ZZ escape\n")
	},
	// Files as mail clients still open them though a strict reader would
	// miss them: white space before a field's colon (RFC 5322 4.5), the
	// x-uuencode transfer encoding, two different names, and ISO-2022-JP-3
	// text designating JIS X 0213 with ESC $ ( Q.
	"hidden_attachments": func() string {
		return crlf("From: a@example.test\nSubject: files\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=HH\n\n" +
			"--HH\nContent-Type : application/octet-stream\nContent-Disposition\t: attachment; filename=\"a.js\"\n" +
			"Content-Transfer-Encoding : base64\n\n" + b64("WScript.Echo(1)") + "\n" +
			"--HH\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: x-uuencode\n\n" + uuencode("run.vbs", "MsgBox 1\n") +
			"--HH\nContent-Type: text/plain; name=\"b.hta\"\nContent-Disposition: attachment; filename=\"b.txt\"\n\n<script>x</script>\n" +
			"--HH\nContent-Type: text/plain; charset=ISO-2022-JP-3\n\n" +
			strings.ReplaceAll(enc(japanese.ISO2022JP, "未承諾広告です"), "\x1b$B", "\x1b$(Q") + "\n--HH--\n")
	},
}

// uuencode encodes a file as uuencode(1) does, begin and end lines included.
func uuencode(name, data string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "begin 644 %s\n", name)
	for len(data) > 0 {
		n := min(45, len(data))
		chunk := data[:n] + "\x00\x00"
		b.WriteByte(byte(' ' + n))
		for i := 0; i < n; i += 3 {
			c0, c1, c2 := chunk[i], chunk[i+1], chunk[i+2]
			for _, v := range []byte{c0 >> 2, (c0<<4 | c1>>4) & 63, (c1<<2 | c2>>6) & 63, c2 & 63} {
				b.WriteByte("`!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_"[v])
			}
		}
		b.WriteByte('\n')
		data = data[n:]
	}
	b.WriteString("`\nend\n")
	return b.String()
}

var (
	jaSJIS = japanese.ShiftJIS
	jaEUC  = japanese.EUCJP
	jaJIS  = japanese.ISO2022JP
)
