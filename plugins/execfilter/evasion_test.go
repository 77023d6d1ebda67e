package execfilter

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/portcullis-mta/portcullis/sdk"
)

// tnef builds a winmail.dat holding files (name, data), as Outlook writes
// it: signature, key, a message-level attribute, then per attachment
// attAttachRendData, attAttachTitle and attAttachData.
func tnef(files ...[2][]byte) []byte {
	var b bytes.Buffer
	b.Write(tnefSignature)
	b.Write([]byte{0x01, 0x00})
	attr := func(level byte, id uint32, v []byte) {
		b.WriteByte(level)
		binary.Write(&b, binary.LittleEndian, id)
		binary.Write(&b, binary.LittleEndian, uint32(len(v)))
		b.Write(v)
		var sum uint16
		for _, c := range v {
			sum += uint16(c)
		}
		binary.Write(&b, binary.LittleEndian, sum)
	}
	attr(0x01, 0x00089006, []byte{0x00, 0x00, 0x01, 0x00}) // attTnefVersion, a message-level attribute
	for _, f := range files {
		attr(0x02, tnefAttachRendData, make([]byte, 14))
		attr(0x02, tnefAttachTitle, append(append([]byte{}, f[0]...), 0))
		attr(0x02, tnefAttachData, f[1])
	}
	return b.Bytes()
}

func tf(name string, data []byte) [2][]byte { return [2][]byte{[]byte(name), data} }

// TestDisguisedNames: names and containers that Windows or a mail client
// resolves to an executable although a plain reading says otherwise.
func TestDisguisedNames(t *testing.T) {
	fat64 := append([]byte{0xca, 0xfe, 0xba, 0xbf, 0, 0, 0, 2}, make([]byte, 100)...)
	script := []byte("WScript.Echo(1)")
	tests := []struct {
		name    string
		parts   []attach
		tags    []string
		verdict sdk.Verdict
		kinds   string
	}{
		{"trailing dot", []attach{{"invoice.js.", "application/octet-stream", script}}, []string{TagExecutable}, sdk.VerdictFail, "script"},
		{"trailing spaces and dots", []attach{{"invoice.vbs . ", "application/octet-stream", script}}, []string{TagExecutable}, sdk.VerdictFail, "script"},
		{"trailing dot in zip", []attach{{"a.zip", "application/zip", makeZip(t, zfile{name: "run.hta.", data: script})}}, []string{TagInArchive}, sdk.VerdictFail, "script"},
		{"honest PE with trailing dot is no mismatch", []attach{{"setup.exe.", "application/octet-stream", peBytes()}}, []string{TagExecutable}, sdk.VerdictFail, "pe"},
		{"only dots", []attach{{"...", "application/octet-stream", []byte("text")}}, nil, sdk.VerdictPass, ""},
		{"fat Mach-O 64", []attach{{"photo.jpg", "image/jpeg", fat64}}, []string{TagExecutable, TagMismatch}, sdk.VerdictFail, "macho"},
		{"pe in winmail.dat", []attach{{"winmail.dat", "application/ms-tnef", tnef(tf("readme.txt", []byte("hi")), tf("INVOIC~1.PDF", peBytes()))}},
			[]string{TagExecutable, TagMismatch}, sdk.VerdictFail, "pe"},
		{"script name in winmail.dat", []attach{{"winmail.dat", "application/ms-tnef", tnef(tf(sjis("請求書.js"), script))}}, []string{TagExecutable}, sdk.VerdictFail, "script"},
		{"zip in winmail.dat is opened", []attach{{"winmail.dat", "application/ms-tnef", tnef(tf("a.zip", makeZip(t, zfile{name: "a.exe", data: peBytes()})))}},
			[]string{TagInArchive}, sdk.VerdictFail, "pe"},
		{"pe before a zip in winmail.dat", []attach{{"winmail.dat", "application/ms-tnef", tnef(tf("a.exe", peBytes()), tf("b.zip", makeZip(t, zfile{name: "c.txt", data: []byte("x")})))}},
			[]string{TagExecutable}, sdk.VerdictFail, "pe"},
		{"winmail.dat in winmail.dat", []attach{{"winmail.dat", "application/ms-tnef", tnef(tf("winmail.dat", tnef(tf("a.exe", peBytes()))))}},
			[]string{TagNested}, sdk.VerdictNeutral, ""},
		{"clean winmail.dat", []attach{{"winmail.dat", "application/ms-tnef", tnef(tf("report.pdf", []byte("%PDF-1.7")))}}, nil, sdk.VerdictPass, ""},
		// Cut inside the data: the name read before still counts.
		{"truncated winmail.dat", []attach{{"winmail.dat", "application/ms-tnef", tnef(tf("a.exe", peBytes()))[:300]}}, []string{TagCorrupt, TagExecutable}, sdk.VerdictFail, "script"},
		{"truncated clean winmail.dat", []attach{{"winmail.dat", "application/ms-tnef", tnef(tf("a.txt", peBytes()))[:300]}}, []string{TagCorrupt}, sdk.VerdictNeutral, ""},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(tc.parts...))
			if !slices.Equal(res.Tags, tc.tags) || res.Verdict != tc.verdict || res.Attrs["kinds"] != tc.kinds {
				t.Errorf("got %v %q kinds %q, want %v %q kinds %q", res.Verdict, res.Tags, res.Attrs["kinds"], tc.verdict, tc.tags, tc.kinds)
			}
		})
	}
}

// TestHiddenParts: attachments that mail clients open but a strict MIME
// reader misses.
func TestHiddenParts(t *testing.T) {
	pe := base64.StdEncoding.EncodeToString(peBytes())
	head := "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
	tests := []struct{ name, part, files string }{
		{"white space before the colons", "Content-Type : application/octet-stream\r\nContent-Disposition : attachment; filename=\"a.pdf\"\r\n" +
			"Content-Transfer-Encoding : base64\r\n\r\n" + pe + "\r\n", "a.pdf"},
		{"x-uuencode transfer encoding", "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n" +
			uuencodeFile("a.pdf", peBytes()), "a.pdf"},
		{"Content-Type name differs from the filename", "Content-Type: text/plain; name=\"run.js\"\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\n\r\n" +
			"WScript.Echo(1)\r\n", "run.js"},
		// A double-byte ISO-2022-JP run left only in a later quoted value
		// is one value to a reader of raw JIS and a filename= to one that
		// reads quoted strings the standard way. The bytes are no
		// executable: only the name can catch it.
		{"filename hidden in a raw ISO-2022-JP run", "Content-Type: application/octet-stream; name=\"\x1b$B\"; filename=\"evil.exe\"; x=\"\x1b(B\"\r\n\r\n" +
			"hello\r\n", "evil.exe"},
		{"RFC 2231 filename hidden in a raw ISO-2022-JP run", "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; " +
			"x=\"\x1b$B\"; filename*=UTF-8''evil.exe; y=\"\x1b(B\"\r\n\r\nhello\r\n", "evil.exe"},
		{"url shortcut hidden in a raw ISO-2022-JP run", "Content-Type: application/octet-stream; name=\"report.pdf\"\r\nContent-Disposition: attachment; " +
			"filename=\"\x1b$B\"; filename*0=\"a\"; filename*1=\".url\"; x=\"\x1b(B\"\r\n\r\n[InternetShortcut]\r\n", "a.url"},
		// The walker keeps the last of two filename=, a client may take
		// the first.
		{"filename given twice", "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; " +
			"filename=\"evil.exe\"; filename=\"a.txt\"\r\n\r\nhello\r\n", "evil.exe"},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, sdk.NewBytesMessage(nil, []byte(head+tc.part+"--B--\r\n")))
			if res.Verdict != sdk.VerdictFail || !slices.Contains(res.Tags, TagExecutable) || res.Attrs["files"] != tc.files {
				t.Errorf("got %v %q %v, want fail executable files=%s", res.Verdict, res.Tags, res.Attrs, tc.files)
			}
		})
	}
}

// uuencodeFile is uuencode(1) output for data.
func uuencodeFile(name string, data []byte) string {
	const alphabet = "`!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_"
	var b bytes.Buffer
	b.WriteString("begin 644 " + name + "\r\n")
	for len(data) > 0 {
		n := min(45, len(data))
		chunk := append(append([]byte{}, data[:n]...), 0, 0)
		b.WriteByte(byte(' ' + n))
		for i := 0; i < n; i += 3 {
			c0, c1, c2 := chunk[i], chunk[i+1], chunk[i+2]
			for _, v := range []byte{c0 >> 2, (c0<<4 | c1>>4) & 63, (c1<<2 | c2>>6) & 63, c2 & 63} {
				b.WriteByte(alphabet[v])
			}
		}
		b.WriteString("\r\n")
		data = data[n:]
	}
	b.WriteString("`\r\nend\r\n")
	return b.String()
}
