package smtpd

import (
	"bytes"
	"fmt"

	"github.com/portcullis-mta/portcullis/core/smtperr"
)

// hopCounter counts the Received fields of a message's header as it
// streams past (RFC 5321 6.3: a relay that counts them detects a loop;
// Postfix's hopcount_limit is 50). It looks only at the header: once the
// empty line that ends it has passed, a Write costs a branch.
//
// It also keeps the Message-ID field's value, for the log line that names
// the queue ID (as Postfix's cleanup logs message-id=).
type hopCounter struct {
	n        int
	done     bool      // the header has ended
	lineHead [300]byte // the first bytes of the current line
	headLen  int       // how many of them there are (at most len(lineHead))

	msgID   []byte // the Message-ID field's value so far
	inMsgID bool   // the last line was the Message-ID field: a continuation goes on it
	date    bool   // the header has a Date field
}

// fieldValue reports whether line is a field named name (lower case),
// and its value: the name in any case, then blanks (RFC 5322 4.5: the
// obsolete syntax lets them stand before the colon), then the colon.
func fieldValue(line []byte, name string) ([]byte, bool) {
	if len(line) <= len(name) || !bytes.EqualFold(line[:len(name)], []byte(name)) {
		return nil, false
	}
	rest := bytes.TrimLeft(line[len(name):], " \t")
	if len(rest) == 0 || rest[0] != ':' {
		return nil, false
	}
	return rest[1:], true
}

func (h *hopCounter) Write(p []byte) {
	for i := 0; i < len(p) && !h.done; i++ {
		b := p[i]
		if b == '\n' {
			line := h.lineHead[:h.headLen]
			cont := len(line) > 0 && (line[0] == ' ' || line[0] == '\t')
			_, isReceived := fieldValue(line, "received")
			_, isDate := fieldValue(line, "date")
			id, isMsgID := fieldValue(line, "message-id")
			switch {
			case bytes.Equal(line, []byte("\r")) || h.headLen == 0:
				h.done = true // the empty line: the body follows
			case isReceived:
				h.n++
			case isDate:
				h.date = true
			case h.msgID == nil && isMsgID:
				h.msgID = append([]byte{}, bytes.TrimSpace(id)...)
				h.inMsgID = true
				h.headLen = 0
				continue
			case cont && h.inMsgID && len(h.msgID) < len(h.lineHead):
				h.msgID = append(h.msgID, bytes.TrimSpace(line)...)
				h.headLen = 0
				continue
			}
			if !cont {
				h.inMsgID = false
			}
			h.headLen = 0
			continue
		}
		if h.headLen < len(h.lineHead) {
			h.lineHead[h.headLen] = b
			h.headLen++
		}
	}
}

// messageID is the Message-ID field's value as it was seen (at most a few
// hundred bytes, made printable for the log), "" if the header has none.
func (h *hopCounter) messageID() string {
	return printable(string(h.msgID), len(h.lineHead))
}

// Hops counts the Received fields of the header at the start of data (CRLF
// lines), as a session counts them for limits.max_hops; `portcullis scan`
// asks it too.
func Hops(data []byte) int {
	var h hopCounter
	h.Write(data)
	return h.n
}

// ErrTooManyHops is the reply to a message that has been through more
// relays than max_hops allows (n Received fields, max_hops or more before
// ours): a loop, most likely.
func ErrTooManyHops(n int) *smtperr.Error {
	return smtperr.New(554, "5.4.6", fmt.Sprintf("Too many hops (%d Received fields): mail loop?", n))
}
