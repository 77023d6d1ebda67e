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
type hopCounter struct {
	n        int
	done     bool     // the header has ended
	lineHead [10]byte // the first bytes of the current line
	headLen  int      // how many of them there are (at most len(lineHead))
}

var receivedPrefix = []byte("received:")

func (h *hopCounter) Write(p []byte) {
	for i := 0; i < len(p) && !h.done; i++ {
		b := p[i]
		if b == '\n' {
			line := h.lineHead[:h.headLen]
			switch {
			case bytes.Equal(line, []byte("\r")) || h.headLen == 0:
				h.done = true // the empty line: the body follows
			case len(line) >= len(receivedPrefix) && bytes.EqualFold(line[:len(receivedPrefix)], receivedPrefix):
				h.n++
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
