package execfilter

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/portcullis-mta/portcullis/sdk/mime"
)

// TNEF (MS-OXTNEF) is how Outlook sends rich-text mail to the outside:
// one winmail.dat part (application/ms-tnef) that holds the message's real
// attachments. Outlook and the TNEF readers of other clients show them as
// attachments of the mail, so they are inspected as attachments (archives
// among them opened one level), not as archive entries. An attachment is
// judged under every name it gives: Outlook and the tnef tool save it under
// its MAPI long file name, which need not match its attAttachTitle
// (README.TXT over invoice.js).

// tnefSignature is TNEFSignature 0x223E9F78, little-endian (MS-OXTNEF 2.1.3.1).
var tnefSignature = []byte{0x78, 0x9f, 0x3e, 0x22}

// Attachment-level attributes (MS-OXTNEF 2.1.3.3, 2.1.3.5).
const (
	tnefLevelAttachment = 0x02
	tnefAttachRendData  = 0x00069002 // starts each attachment
	tnefAttachTitle     = 0x00018010 // its file name (PidTagAttachFilename: 8.3 keeps the extension)
	tnefAttachData      = 0x0006800f // its bytes
	tnefAttachment      = 0x00069005 // its MAPI properties (MS-OXTNEF 2.1.3.4)
)

// MAPI properties of an attachment that name it or hold its bytes
// (MS-OXPROPS). Outlook saves an attachment under its long file name, and
// so does the tnef tool of Debian and others, not under the title.
const (
	pidAttachLongFilename = 0x3707
	pidAttachFilename     = 0x3704
	pidDisplayName        = 0x3001
	pidAttachDataBinary   = 0x3701 // the bytes, when no attAttachData holds them
)

type tnefFile struct {
	names []string // every name it gives: the one it is saved under first
	data  []byte
}

// name is the name a reader saves the file under, or "".
func (f *tnefFile) name() string {
	if len(f.names) == 0 {
		return ""
	}
	return f.names[0]
}

// tnefFiles lists the attachments of a TNEF stream. ok is false when the
// stream breaks off or is malformed; the files read before are returned.
func tnefFiles(data []byte) (files []tnefFile, ok bool) {
	// signature, LegacyKey (2 bytes), then attributes: level (1), id (4),
	// length (4), data, checksum (2).
	p := data[6:]
	var titles []string // attAttachTitle of each file, its name when no property gives one
	var props []mapiNames
	for len(p) > 0 {
		if len(p) < 9 {
			break
		}
		level, id, n := p[0], binary.LittleEndian.Uint32(p[1:]), binary.LittleEndian.Uint32(p[5:])
		if uint64(n)+11 > uint64(len(p)) {
			break
		}
		v := p[9 : 9+n]
		last := len(files) - 1
		switch {
		case level != tnefLevelAttachment:
		case id == tnefAttachRendData:
			files, titles, props = append(files, tnefFile{}), append(titles, ""), append(props, mapiNames{})
		case id == tnefAttachTitle && last >= 0:
			// A C string, as readers take it (a NUL inside cuts it), in
			// the sender's code page: CP932 in Japan.
			title, _, _ := bytes.Cut(v, []byte{0})
			titles[last], _ = mime.ToUTF8(title, "")
		case id == tnefAttachData && last >= 0:
			files[last].data = v
		case id == tnefAttachment && last >= 0:
			props[last] = attachProps(v)
		}
		p = p[11+n:]
	}
	for i := range files {
		f, pr := &files[i], props[i]
		for _, n := range []string{pr.longName, pr.fileName, titles[i], pr.display} {
			if n != "" && !slices.Contains(f.names, n) {
				f.names = append(f.names, n)
			}
		}
		if f.data == nil {
			f.data = pr.data
		}
	}
	return files, len(p) == 0
}

// mapiNames are the properties of an attachment's MAPI property list that
// name it, and its bytes when the list holds them.
type mapiNames struct {
	longName, fileName, display string
	data                        []byte
}

// attachProps reads an attAttachment MsgPropertyList (MS-OXTNEF 2.1.3.4):
// a count, then per property its type and id (2 bytes each), for a named
// property (id 0x8000 and up) a GUID and a kind with an id or a name, then
// its value: fixed-size types padded to 4 bytes; strings, binaries and
// objects as a count of values, each a length and bytes padded to 4; a
// multi-valued type (0x1000) as a count of values. Every step consumes
// bytes, so a list of any count costs what it is long; reading stops at a
// type it does not know or where the bytes end, with what it read.
func attachProps(b []byte) (m mapiNames) {
	r := mapiReader{b: b}
	for count := r.u32(); count > 0 && r.ok(); count-- {
		typ, id := r.u16(), r.u16()
		if id >= 0x8000 {
			r.skip(16) // the property set GUID
			if kind := r.u32(); kind == 1 {
				r.skipPadded(r.u32()) // a name, UTF-16
			} else {
				r.skip(4)
			}
		}
		values := uint32(1)
		base := typ &^ 0x1000
		if typ&0x1000 != 0 || isVarMAPI(base) {
			values = r.u32()
		}
		for ; values > 0 && r.ok(); values-- {
			if !isVarMAPI(base) {
				size := fixedMAPISize(base)
				if size < 0 {
					return m // unknown: the rest cannot be found
				}
				r.skip(uint32(size))
				continue
			}
			v := r.padded(r.u32())
			if typ&0x1000 != 0 {
				continue
			}
			switch id {
			case pidAttachLongFilename:
				m.longName = mapiString(base, v)
			case pidAttachFilename:
				m.fileName = mapiString(base, v)
			case pidDisplayName:
				m.display = mapiString(base, v)
			case pidAttachDataBinary:
				if base == 0x000D && len(v) >= 16 {
					v = v[16:] // PtypObject: the interface id comes first
				}
				m.data = v
			}
		}
	}
	return m
}

// isVarMAPI reports the types stored as a count and length-prefixed values:
// PtypString8, PtypString, PtypBinary, PtypObject.
func isVarMAPI(t uint16) bool { return t == 0x001E || t == 0x001F || t == 0x0102 || t == 0x000D }

// fixedMAPISize is the size in TNEF of a value of a fixed-size type
// (MS-OXCDATA 2.11.1; 16- and 8-bit ones padded to 4), or -1.
func fixedMAPISize(t uint16) int {
	switch t {
	case 0x0002, 0x0003, 0x0004, 0x000A, 0x000B: // Integer16, Integer32, Floating32, ErrorCode, Boolean
		return 4
	case 0x0005, 0x0006, 0x0007, 0x0014, 0x0040: // Floating64, Currency, FloatingTime, Integer64, Time
		return 8
	case 0x0048: // Guid
		return 16
	}
	return -1
}

// mapiString decodes a PtypString (UTF-16LE) or PtypString8 (the sender's
// code page) value, which ends in a NUL.
func mapiString(t uint16, v []byte) string {
	if t == 0x001F {
		u := make([]uint16, 0, len(v)/2)
		for i := 0; i+1 < len(v); i += 2 {
			u = append(u, binary.LittleEndian.Uint16(v[i:]))
		}
		s := string(utf16.Decode(u))
		s, _, _ = strings.Cut(s, "\x00")
		return s
	}
	if t != 0x001E {
		return ""
	}
	v, _, _ = bytes.Cut(v, []byte{0})
	s, _ := mime.ToUTF8(v, "")
	return s
}

// mapiReader reads little-endian values off a property list; past its end
// it reads zeros and ok is false.
type mapiReader struct {
	b   []byte
	bad bool
}

func (r *mapiReader) ok() bool { return !r.bad }

func (r *mapiReader) take(n uint32) []byte {
	if r.bad || uint64(n) > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *mapiReader) skip(n uint32) { r.take(n) }

func (r *mapiReader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

func (r *mapiReader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

// padded reads n bytes and the padding to a multiple of 4 after them.
func (r *mapiReader) padded(n uint32) []byte {
	v := r.take(n)
	r.skip(uint32(-int64(n) & 3))
	return v
}

func (r *mapiReader) skipPadded(n uint32) { r.padded(n) }

// isTNEF reports a TNEF stream by its signature.
func isTNEF(data []byte) bool { return len(data) >= 6 && bytes.HasPrefix(data, tnefSignature) }

// tnefAttachments inspects the attachments inside a TNEF stream. A TNEF
// stream inside one of them is tagged nested and not opened. It reports
// false for a stream that breaks off, which may then be read as another
// format (a ZIP behind a TNEF signature).
func (in *inspector) tnefAttachments(ctx context.Context, data []byte) bool {
	if in.inTNEF {
		in.tag(TagNested)
		return true
	}
	files, ok := tnefFiles(data)
	if !ok {
		in.tag(TagCorrupt)
	}
	if len(files) > in.lim.MaxEntries {
		in.limit("entries")
		files = files[:in.lim.MaxEntries]
	}
	outer := in.current
	in.inTNEF = true
	for _, f := range files {
		if ctx.Err() != nil {
			in.limit("time")
			break
		}
		in.attachment(ctx, f.name(), "", f.data)
		for _, n := range f.names[min(1, len(f.names)):] {
			// Readers differ on the name they save a file under (the
			// long file name, the 8.3 one, the title): judge them all.
			head := newFileScan(nil)
			head.Write(f.data[:min(len(f.data), headSize)])
			in.judge(n, "", head, TagExecutable)
		}
	}
	in.inTNEF, in.current = false, outer
	return ok
}
