package execfilter

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/portcullis-mta/portcullis/sdk"
)

// mapiProp is one property of an attAttachment list: its type, id and
// value as TNEF stores it (see attachProps).
type mapiProp struct {
	typ, id uint16 // an id from 0x8000 is a named property's (propList writes its GUID and kind)
	value   []byte // the value(s) as written after the tag
}

// le writes little-endian values.
func le(vs ...any) []byte {
	var b bytes.Buffer
	for _, v := range vs {
		binary.Write(&b, binary.LittleEndian, v)
	}
	return b.Bytes()
}

// padded is n values each a length and bytes padded to 4, as a
// PtypString8, PtypString or PtypBinary value is written.
func padded(vals ...[]byte) []byte {
	b := le(uint32(len(vals)))
	for _, v := range vals {
		b = append(b, le(uint32(len(v)))...)
		b = append(b, v...)
		b = append(b, make([]byte, -len(v)&3)...)
	}
	return b
}

func string8(s string) mapiProp { return mapiProp{typ: 0x001E, value: padded(append([]byte(s), 0))} }

func unicode(s string) []byte {
	return padded(le(append(utf16.Encode([]rune(s)), 0)))
}

// propList is a MsgPropertyList of props.
func propList(props ...mapiProp) []byte {
	b := le(uint32(len(props)))
	for _, p := range props {
		b = append(b, le(p.typ, p.id)...)
		if p.id >= 0x8000 {
			b = append(b, make([]byte, 16)...) // the property set GUID
			b = append(b, le(uint32(0), uint32(0x8005))...)
		}
		b = append(b, p.value...)
	}
	return b
}

// tnefWithProps is a winmail.dat of one attachment whose attAttachTitle is
// title, attAttachData data (none when nil), and attAttachment props.
func tnefWithProps(title string, data []byte, props ...mapiProp) []byte {
	t := tnef(tf(title, data))
	if data == nil { // drop attAttachData: the 11 bytes of its frame, empty
		t = t[:len(t)-11]
	}
	var b bytes.Buffer
	b.Write(t)
	list := propList(props...)
	b.WriteByte(tnefLevelAttachment)
	b.Write(le(uint32(tnefAttachment), uint32(len(list))))
	b.Write(list)
	b.Write([]byte{0, 0}) // the checksum is not checked
	return b.Bytes()
}

// TestTNEFPropertyNames: a winmail.dat attachment is saved under its MAPI
// long file name (Outlook, the tnef tool), which may differ from its
// attAttachTitle: every name it gives is judged, wherever the property
// stands in its list, and bytes held only in PidTagAttachDataBinary are
// inspected.
func TestTNEFPropertyNames(t *testing.T) {
	script := []byte("var s = new ActiveXObject('WScript.Shell');")
	method := mapiProp{typ: 0x0003, id: 0x3705, value: le(uint32(1))} // PidTagAttachMethod
	tests := []struct {
		name    string
		tnef    []byte
		verdict sdk.Verdict
		files   string
	}{
		{"long file name", tnefWithProps("README.TXT", script, mapiProp{0x001E, pidAttachLongFilename, padded([]byte("invoice.js\x00"))}, method),
			sdk.VerdictFail, "invoice.js"},
		{"long file name in UTF-16 after other properties", tnefWithProps("README.TXT", script,
			method,
			mapiProp{typ: 0x0002, id: 0x0e21, value: le(uint16(1), uint16(0))},                           // Integer16, padded
			mapiProp{typ: 0x0040, id: 0x3007, value: le(uint64(0))},                                      // Time
			mapiProp{typ: 0x0102, id: 0x3709, value: padded([]byte{1, 2, 3, 4, 5})},                      // Binary
			mapiProp{typ: 0x101E, id: 0x8001, value: padded([]byte("a\x00"), []byte("bc\x00"))},          // multi-valued, named
			mapiProp{typ: 0x1003, id: 0x0e20, value: append(le(uint32(2)), le(uint32(7), uint32(8))...)}, // multi-valued Integer32
			mapiProp{0x001F, pidAttachLongFilename, unicode("請求書.js")}),
			sdk.VerdictFail, "請求書.js"},
		{"8.3 file name property", tnefWithProps("README.TXT", script, string8("x"), mapiProp{0x001E, pidAttachFilename, padded([]byte("INVOIC~1.JS\x00"))}),
			sdk.VerdictFail, "INVOIC~1.JS"},
		{"display name", tnefWithProps("README.TXT", script, mapiProp{0x001F, pidDisplayName, unicode("invoice.js")}),
			sdk.VerdictFail, "invoice.js"},
		{"bytes only in the data property", tnefWithProps("report.pdf", nil, mapiProp{0x0102, pidAttachDataBinary, padded(peBytes())}),
			sdk.VerdictFail, "report.pdf"},
		{"NUL in the title", tnef(tf("invoice.js\x00.txt", script)), sdk.VerdictFail, "invoice.js"},
		{"clean", tnefWithProps("REPORT.PDF", []byte("%PDF-1.7"), mapiProp{0x001E, pidAttachLongFilename, padded([]byte("report.pdf\x00"))}, method),
			sdk.VerdictPass, ""},
		{"an unknown type stops the list, not the names before it",
			tnefWithProps("README.TXT", script, mapiProp{0x001E, pidAttachLongFilename, padded([]byte("a.js\x00"))}, mapiProp{typ: 0x0999, id: 1},
				mapiProp{0x001E, pidDisplayName, padded([]byte("b.txt\x00"))}),
			sdk.VerdictFail, "a.js"},
	}
	st := newStage(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, st, mimeMessage(attach{"winmail.dat", "application/ms-tnef", tc.tnef}))
			if res.Verdict != tc.verdict || res.Attrs["files"] != tc.files || slices.Contains(res.Tags, TagCorrupt) {
				t.Errorf("got %v %q %v, want %v files=%q", res.Verdict, res.Tags, res.Attrs, tc.verdict, tc.files)
			}
		})
	}
}

// TestTNEFPropertyListBounded: property lists cut anywhere or claiming
// counts their bytes cannot hold are read as far as they go.
func TestTNEFPropertyListBounded(t *testing.T) {
	list := propList(string8("x"), mapiProp{typ: 0x1048, id: 1, value: append(le(uint32(1)), make([]byte, 16)...)},
		mapiProp{0x001F, pidAttachLongFilename, unicode("a.js")})
	if m := attachProps(list); m.longName != "a.js" {
		t.Fatalf("attachProps = %+v, want the long file name a.js", m)
	}
	for i := range len(list) {
		if m := attachProps(list[:i]); m.longName != "" && m.longName != "a.js" {
			t.Errorf("cut at %d: long file name %q", i, m.longName)
		}
	}
	huge := append(le(uint32(0xffffffff)), le(uint16(0x101E), uint16(1), uint32(0xffffffff), uint32(0xfffffff0))...)
	if m := attachProps(huge); m.longName != "" || m.fileName != "" || m.display != "" || m.data != nil {
		t.Errorf("attachProps(huge counts) = %+v", m)
	}
}

// FuzzTNEFNames reads an attachment's attAttachTitle and attAttachment
// property list, the sender's bytes: whatever they hold, the stream
// around them is read whole as one file, and its names are UTF-8, none
// empty, none given twice, none holding the NUL a reader cuts a name at,
// the first from the property list when it names the file.
func FuzzTNEFNames(f *testing.F) {
	f.Fuzz(func(t *testing.T, title string, list []byte) {
		var b bytes.Buffer
		b.Write(tnef(tf(title, []byte("x"))))
		b.WriteByte(tnefLevelAttachment)
		b.Write(le(uint32(tnefAttachment), uint32(len(list))))
		b.Write(list)
		b.Write([]byte{0, 0})
		files, ok := tnefFiles(b.Bytes())
		if !ok || len(files) != 1 {
			t.Fatalf("a well-formed stream read as %d files, ok %v", len(files), ok)
		}
		seen := map[string]bool{}
		for _, n := range files[0].names {
			if n == "" || seen[n] || !utf8.ValidString(n) || strings.IndexByte(n, 0) >= 0 {
				t.Fatalf("names %q: empty, repeated, not UTF-8 or holding a NUL", files[0].names)
			}
			seen[n] = true
		}
		m := attachProps(list)
		if want := cmp.Or(m.longName, m.fileName); want != "" && files[0].name() != want {
			t.Fatalf("saved as %q, want the property's %q", files[0].name(), want)
		}
	})
}
