package execfilter

import (
	"bytes"
	"context"
	"encoding/binary"

	"github.com/portcullis-mta/portcullis/sdk/mime"
)

// TNEF (MS-OXTNEF) is how Outlook sends rich-text mail to the outside:
// one winmail.dat part (application/ms-tnef) that holds the message's real
// attachments. Outlook and the TNEF readers of other clients show them as
// attachments of the mail, so they are inspected as attachments (archives
// among them opened one level), not as archive entries.

// tnefSignature is TNEFSignature 0x223E9F78, little-endian (MS-OXTNEF 2.1.3.1).
var tnefSignature = []byte{0x78, 0x9f, 0x3e, 0x22}

// Attachment-level attributes (MS-OXTNEF 2.1.3.3, 2.1.3.5).
const (
	tnefLevelAttachment = 0x02
	tnefAttachRendData  = 0x00069002 // starts each attachment
	tnefAttachTitle     = 0x00018010 // its file name (PidTagAttachFilename: 8.3 keeps the extension)
	tnefAttachData      = 0x0006800f // its bytes
)

type tnefFile struct {
	name string
	data []byte
}

// tnefFiles lists the attachments of a TNEF stream. ok is false when the
// stream breaks off or is malformed; the files read before are returned.
func tnefFiles(data []byte) (files []tnefFile, ok bool) {
	// signature, LegacyKey (2 bytes), then attributes: level (1), id (4),
	// length (4), data, checksum (2).
	p := data[6:]
	for len(p) > 0 {
		if len(p) < 9 {
			return files, false
		}
		level, id, n := p[0], binary.LittleEndian.Uint32(p[1:]), binary.LittleEndian.Uint32(p[5:])
		if uint64(n)+11 > uint64(len(p)) {
			return files, false
		}
		v := p[9 : 9+n]
		switch {
		case level != tnefLevelAttachment:
		case id == tnefAttachRendData:
			files = append(files, tnefFile{})
		case id == tnefAttachTitle && len(files) > 0:
			name, _ := mime.ToUTF8(bytes.TrimRight(v, "\x00"), "") // the sender's code page: CP932 in Japan
			files[len(files)-1].name = name
		case id == tnefAttachData && len(files) > 0:
			files[len(files)-1].data = v
		}
		p = p[11+n:]
	}
	return files, true
}

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
		in.attachment(ctx, f.name, "", f.data)
	}
	in.inTNEF, in.current = false, outer
	return ok
}
