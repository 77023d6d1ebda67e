package msgauth

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/portcullis-mta/portcullis/sdk"
	sdkmime "github.com/portcullis-mta/portcullis/sdk/mime"
)

// ownHeader is what the stage reads from the message's header itself.
//
// The gateway gives stages the first 256 KiB of the header only
// (sdk.Message.Header), without saying it cut it: a From field, or a
// forged Authentication-Results field, below 256 KiB of padding was not
// there for this stage, and a DMARC p=reject became permerror ("0 From
// fields"), which rules let through, while DKIM verified over the whole
// message. So the header is read whole from the message, as DKIM reads
// it. That holds nothing more in memory than verification does: go-msgauth
// keeps the whole header to find the signed fields, and the gateway's
// message size limit bounds it.
type ownHeader struct {
	fields int               // top-level fields
	dkim   bool              // a DKIM-Signature field is there
	kept   []sdk.HeaderField // the From and Authentication-Results fields, unfolded, in order
}

// readOwnHeader reads msg's header through the empty line that ends it, or
// to the end of a message without a body (RFC 5322 3.5).
func readOwnHeader(msg *sdk.Message) (ownHeader, error) {
	r, err := msg.Open()
	if err != nil {
		return ownHeader{}, err
	}
	defer r.Close()
	var h ownHeader
	br := bufio.NewReaderSize(r, 64<<10)
	var cur *bytes.Buffer // the value of a kept field being read, nil for others
	flush := func() {
		if cur != nil {
			h.kept[len(h.kept)-1].Value = sdkmime.HeaderUTF8(unfold(cur.String()))
			cur = nil
		}
	}
	start := true // line starts a line: a line longer than br's buffer comes in several slices
	for {
		line, err := br.ReadSlice('\n')
		if start && len(line) > 0 && line[0] != ' ' && line[0] != '\t' {
			flush()
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				return h, nil // the empty line: end of the header
			}
			h.fields++
			name, value, _ := strings.Cut(string(line), ":")
			name = strings.TrimSpace(name)
			h.dkim = h.dkim || strings.EqualFold(name, "DKIM-Signature")
			if strings.EqualFold(name, "From") || strings.EqualFold(name, arField) {
				h.kept = append(h.kept, sdk.HeaderField{Name: name})
				cur = bytes.NewBufferString(value)
			}
		} else if cur != nil {
			cur.Write(line)
		}
		start = err == nil
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
		case err == io.EOF:
			flush()
			return h, nil
		case err != nil:
			return ownHeader{}, err
		}
	}
}

// unfold joins folded lines (RFC 5322 2.2.3), as the gateway does for
// the fields it gives stages.
func unfold(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "")
	return strings.TrimSpace(strings.ReplaceAll(s, "\n", ""))
}
